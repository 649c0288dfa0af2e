package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// caCommand shows and rotates the domain CA (docs/pki.md, "Rotating the
// CA").
func (a *app) caCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Show, rotate and retire the domain CA's roots",
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the CA's roots, the one issuing node certificates and the hosts not yet renewed from it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			st, err := c.CAStatus(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, st, func(w io.Writer) { a.caStatus(w, st) })
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new root, trusted beside the current one, that issues node certificates from now on",
		Long: `Add a new root to the domain CA. Both roots are trusted from now on; the
new one signs every node certificate issued from now on, and each node
manager, told by its next heartbeat answer, fetches the new trust bundle and
renews its certificate from the new root at once: no host joins again. The
admin nodes keep serving a certificate of the previous root until it is
retired, since node managers that have not yet fetched the bundle trust only
that one. Watch "gatehouse ca show" until no host is pending, then run
"gatehouse ca retire". Domain admins only; audited.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			st, err := c.RotateCA(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, st, func(w io.Writer) {
				fmt.Fprintf(w, "new CA root %s issues node certificates; the previous root stays trusted until `gatehouse ca retire`\n\n", st.Issuer)
				a.caStatus(w, st)
			})
		},
	}
	var force bool
	retire := &cobra.Command{
		Use:   "retire",
		Short: "Stop trusting the previous root, once every host renewed from the new one",
		Long: `Retire the previous root: it is trusted no more, and the admin nodes serve
a certificate of the new root from their next handshake. Refused while a
host's node manager last presented a certificate of the previous root (see
"gatehouse ca show"): such a host would lose its connection and have to join
again. --force retires anyway. CLI users who pinned the previous root's
fingerprint log in again with the new one (gatehouse ca show prints it).
Domain admins only; audited.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			st, err := c.RetireCA(cmd.Context(), apitypes.CARetire{Force: force})
			if err != nil {
				return err
			}
			return a.render(cmd, st, func(w io.Writer) {
				fmt.Fprintf(w, "previous CA root retired; the admin nodes now present %s\n\n", st.Fingerprint)
				a.caStatus(w, st)
			})
		},
	}
	retire.Flags().BoolVar(&force, "force", false, "retire even while hosts have not renewed (they must join again)")
	certs := &cobra.Command{
		Use:   "certificates",
		Short: "List the expiry of every certificate the domain depends on that you may see",
		Long: `List the CA roots, the answering admin node's HTTPS certificate and each
node manager's certificate (with host:read), and the TLS certificates of the
current deployment of each group whose deployments you may read, with the
fraction of life left and the state: ok, warning (under the admin node's
--cert-warn-fraction) or expired.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			list, err := c.Certificates(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, list, func(w io.Writer) { a.certificates(w, list) })
		},
	}
	cmd.AddCommand(show, rotate, retire, certs)
	return cmd
}

func (a *app) caStatus(w io.Writer, st apitypes.CAStatus) {
	a.certificates(w, st.Roots)
	fmt.Fprintf(w, "\nPresented to clients: %s\n", st.Fingerprint)
	if !st.Rotating {
		fmt.Fprintln(w, "No rotation under way.")
		return
	}
	if len(st.Pending) == 0 {
		fmt.Fprintln(w, "Rotation under way: every host renewed from the new root; `gatehouse ca retire` is safe.")
		return
	}
	fmt.Fprintf(w, "Rotation under way: %d hosts not yet renewed from the new root: %s\n", len(st.Pending), strings.Join(st.Pending, ", "))
}

func (a *app) certificates(w io.Writer, list []apitypes.CertificateExpiry) {
	if len(list) == 0 {
		fmt.Fprintln(w, "No certificate.")
		return
	}
	t := newTable(w, "KIND", "NAME", "GROUP", "SUBJECT", "EXPIRES", "LIFE-LEFT", "STATE", "ROLE")
	for _, c := range list {
		t.row(c.Kind, c.Name, c.Group, c.Subject, a.when(c.NotAfter), fmt.Sprintf("%.0f%%", c.LifeLeft*100), c.State, c.Role)
	}
	t.flush()
}
