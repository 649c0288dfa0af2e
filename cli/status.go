package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the domain on one screen: groups, hosts and what needs attention",
		Long: `Show the domain as far as you may see it: each group's instances by status
and its roll-out, each host with its node manager's last contact and
version, and what needs attention (instances that are Only Heartbeat, with
the reason they gave, lost or offline, crash-looping, unreachable by their
peers or drifting; certificates near expiry; traffic batches
dropped; scheduled backups failing), and the certificates the domain
depends on by state, listing those in the warning state or expired
(gatehouse ca certificates lists them all). Hosts are shown to users with
host:read; the answering admin node's scheduled backups to users with
backup:create.`,
		Example: `  gatehouse status
  gatehouse status -o json | jq '.attention[] | select(.kind == "only_heartbeat")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			o, err := c.Overview(cmd.Context())
			var apiErr *client.APIError
			if errors.As(err, &apiErr) && apiErr.Detail.Code == apitypes.CodeUnavailable {
				// The overview is what an operator runs first in an
				// outage: it names the admin node that said so.
				t, _ := a.resolve()
				return fmt.Errorf("database unreachable through the admin node at %s: %w", t.addr, err)
			}
			if err != nil {
				return err
			}
			return a.render(cmd, o, func(w io.Writer) { a.overview(w, o) })
		},
	}
}

func (a *app) overview(w io.Writer, o apitypes.Overview) {
	fmt.Fprintf(w, "Domain %s at %s\n\n", o.Domain, a.when(o.Time))
	if a.adminNodes(w, o) {
		fmt.Fprintln(w)
	}
	if len(o.Groups) == 0 {
		fmt.Fprintln(w, "No group.")
	} else {
		// The statuses as the API names them (docs/admin-api.md), in the
		// order a dashboard lists them.
		statuses := []string{"Healthy", "Only Heartbeat", "Lost Connection", "Offline", "Pending"}
		t := newTable(w, "GROUP", "DEPLOYMENT", "ROLLOUT", "HEALTHY", "ONLY-HEARTBEAT", "LOST", "OFFLINE", "PENDING")
		for _, g := range o.Groups {
			row := []string{g.Name, deploymentLabel(strconv.FormatUint(g.CurrentDeployment, 10)), g.Rollout}
			for _, st := range statuses {
				row = append(row, strconv.Itoa(g.ByStatus[st]))
			}
			t.row(row...)
		}
		t.flush()
	}
	fmt.Fprintln(w)
	switch {
	case o.HostsHidden:
		fmt.Fprintln(w, "Hosts are not shown: that needs host:read.")
	case len(o.Hosts) == 0:
		fmt.Fprintln(w, "No host.")
	default:
		t := newTable(w, "HOST", "ADDRESS", "INSTANCES", "LAST-CONTACT", "VERSION", "CERT-EXPIRES")
		for _, h := range o.Hosts {
			t.row(h.Name, h.Address, strconv.Itoa(h.Instances), a.when(h.LastContact), h.Version, a.when(h.CertNotAfter))
		}
		t.flush()
	}
	fmt.Fprintln(w)
	if a.versions(w, o) {
		fmt.Fprintln(w)
	}
	if a.dynamicSettings(w, o) {
		fmt.Fprintln(w)
	}
	if o.Backups != nil {
		a.backups(w, *o.Backups)
		fmt.Fprintln(w)
	}
	if a.certSummary(w, o.Certificates) {
		fmt.Fprintln(w)
	}
	if len(o.Attention) == 0 {
		fmt.Fprintln(w, "Nothing needs attention.")
		return
	}
	fmt.Fprintf(w, "Needs attention (%d):\n", len(o.Attention))
	t := newTable(w, "KIND", "GROUP", "INSTANCE", "HOST", "REASON")
	for _, at := range o.Attention {
		t.row(at.Kind, at.Group, at.Instance, at.Host, at.Reason)
	}
	t.flush()
}

// versions prints the mix of gateway versions per group and per host,
// the version of each host's gateway binary, and the instances partial
// deployments skipped; it reports whether it printed anything.
func (a *app) versions(w io.Writer, o apitypes.Overview) bool {
	type row struct{ where, version, level, instances string }
	var rows []row
	add := func(where string, vs []apitypes.VersionCount) {
		for _, v := range vs {
			r := row{where, v.Version, strconv.Itoa(v.FeatureLevel), strings.Join(v.Instances, ",")}
			if v.Version == "" {
				r.version, r.level = "(not reported)", "-"
			}
			rows = append(rows, r)
		}
	}
	for _, g := range o.Groups {
		add("group "+g.Name, g.Versions)
	}
	for _, h := range o.Hosts {
		add("host "+h.Name, h.Gateways)
		if h.GatewayBinary != "" {
			rows = append(rows, row{"host " + h.Name, h.GatewayBinary, "-", "(binary on disk)"})
		}
	}
	printed := false
	if len(rows) > 0 {
		fmt.Fprintln(w, "Gateway versions:")
		t := newTable(w, "WHERE", "VERSION", "FEATURE-LEVEL", "INSTANCES")
		for _, r := range rows {
			t.row(r.where, r.version, r.level, r.instances)
		}
		t.flush()
		printed = true
	}
	for _, g := range o.Groups {
		if len(g.Skipped) == 0 {
			continue
		}
		if printed {
			fmt.Fprintln(w)
		}
		printed = true
		fmt.Fprintf(w, "Group %s: deployment #%d is partial, %d instance(s) skipped:\n", g.Name, g.CurrentDeployment, len(g.Skipped))
		for _, sk := range g.Skipped {
			fmt.Fprintf(w, "  %s (host %s): %s\n", sk.Instance, sk.Host, sk.Reason)
		}
	}
	return printed
}

// dynamicSettings prints the groups' dynamic settings and what the
// gateways that run other than as started run; it reports whether it
// printed anything.
func (a *app) dynamicSettings(w io.Writer, o apitypes.Overview) bool {
	t := (*table)(nil)
	row := func(cells ...string) {
		if t == nil {
			fmt.Fprintln(w, "Dynamic settings (gatehouse settings):")
			t = newTable(w, "WHERE", "LOG-LEVEL", "ACCESS-LOG", "TRACE")
		}
		t.row(cells...)
	}
	for _, g := range o.Groups {
		if gs := g.Settings; gs != nil {
			row("group "+g.Name, orDash(gs.LogLevel), accessLogText(gs.AccessLog), traceText(a, gs.Trace))
		}
		for _, r := range g.Running {
			row("instance "+r.Instance+" runs", orDash(r.Settings.LogLevel), percentText(r.Settings.AccessLogPercent), runningTrace(a, r.Settings))
		}
	}
	if t == nil {
		return false
	}
	t.flush()
	return true
}

// adminNodes prints the domain's database and its admin nodes, with the
// one running the background work, and reports whether it printed
// anything (an admin node of an older version says neither).
func (a *app) adminNodes(w io.Writer, o apitypes.Overview) bool {
	if o.Database.Kind == "" && len(o.AdminNodes) == 0 {
		return false
	}
	if o.Database.Kind != "" {
		state := "reachable"
		if !o.Database.Reachable {
			state = "unreachable"
		}
		fmt.Fprintf(w, "Database %s: %s\n", o.Database.Kind, state)
	}
	if len(o.AdminNodes) == 0 {
		return true
	}
	t := newTable(w, "ADMIN-NODE", "BACKGROUND-LEASE")
	for _, n := range o.AdminNodes {
		lease := "-"
		if n == o.LeaseHolder {
			lease = "holder"
		}
		t.row(n, lease)
	}
	t.flush()
	if o.LeaseHolder == "" {
		fmt.Fprintln(w, "No admin node holds the background lease: instance status removal and traffic roll-up wait until one takes it.")
	}
	return true
}

// backups prints the answering admin node's scheduled backups.
func (a *app) backups(w io.Writer, b apitypes.OverviewBackups) {
	fmt.Fprintf(w, "Backups to %s every %s, keeping %d", b.Location, b.Interval, b.Keep)
	if !b.Running {
		fmt.Fprint(w, " (taken by the admin node holding the background lease, not this one)")
	}
	fmt.Fprintf(w, ": %d stored, %d failed since start, %d kept\n", b.Successes, b.Failures, b.Kept)
	if !b.LastSuccess.IsZero() {
		fmt.Fprintf(w, "  last: %s at %s, %d bytes\n", b.LastName, a.when(b.LastSuccess), b.LastSize)
	}
	if b.LastError != "" {
		fmt.Fprintf(w, "  FAILING since %s: %s\n", a.when(b.LastFailure), b.LastError)
	}
}

// certSummary counts the certificates by state and lists those that are
// not ok, reporting whether it printed anything.
func (a *app) certSummary(w io.Writer, certs []apitypes.CertificateExpiry) bool {
	if len(certs) == 0 {
		return false
	}
	count := map[string]int{}
	var bad []apitypes.CertificateExpiry
	for _, c := range certs {
		count[c.State]++
		if c.State != apitypes.CertOK {
			bad = append(bad, c)
		}
	}
	fmt.Fprintf(w, "Certificates: %d ok, %d warning, %d expired\n", count[apitypes.CertOK], count[apitypes.CertWarning], count[apitypes.CertExpired])
	if len(bad) > 0 {
		a.certificates(w, bad)
	}
	return true
}
