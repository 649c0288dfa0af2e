package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the domain on one screen: groups, hosts and what needs attention",
		Long: `Show the domain as far as you may see it: each group's instances by status
and its roll-out, each host with its node manager's last contact and
version, and what needs attention (instances that are Only Heartbeat, with
the reason they gave, lost or offline, crash-looping, unreachable by their
peers or drifting; node certificates near expiry; traffic batches
dropped). Hosts are shown to users with host:read.`,
		Example: `  gatehouse status
  gatehouse status -o json | jq '.attention[] | select(.kind == "only_heartbeat")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			o, err := c.Overview(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, o, func(w io.Writer) { a.overview(w, o) })
		},
	}
}

func (a *app) overview(w io.Writer, o apitypes.Overview) {
	fmt.Fprintf(w, "Domain %s at %s\n\n", o.Domain, a.when(o.Time))
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
