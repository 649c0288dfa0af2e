package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

func (a *app) hostCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Manage hosts, the machines running a node manager",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the hosts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			hosts, err := c.ListHosts(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, hosts, func(w io.Writer) {
				t := newTable(w, "NAME", "LABELS", "CREATED", "LAST BATCH", "DROPPED", "LOST")
				for _, h := range hosts {
					var last, dropped, lost string
					if tr := h.Traffic; tr != nil {
						last, dropped, lost = a.when(tr.LastBatchAt), strconv.FormatUint(tr.Dropped, 10), strconv.FormatUint(tr.Lost, 10)
					}
					t.row(h.Name, labels(h.Labels), a.when(h.CreatedAt), last, dropped, lost)
				}
				t.flush()
			})
		},
	}
	var labelFlags []string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Declare a host",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseLabels("label", labelFlags)
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			h, err := c.CreateHost(cmd.Context(), apitypes.Host{Name: args[0], Labels: l})
			if err != nil {
				return fmt.Errorf("create host %s: %w", args[0], err)
			}
			return a.printHost(cmd, h)
		},
	}
	create.Flags().StringArrayVar(&labelFlags, "label", nil, "label k=v (repeatable)")
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a host",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			h, err := c.GetHost(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printHost(cmd, h)
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a host without instances",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteHost(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete host %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted host %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, create, get, del)
	return cmd
}

func (a *app) printHost(cmd *cobra.Command, h apitypes.Host) error {
	return a.render(cmd, h, func(w io.Writer) {
		pairs := []string{"Name", h.Name, "Labels", labels(h.Labels), "Created", a.when(h.CreatedAt)}
		if tr := h.Traffic; tr != nil {
			pairs = append(pairs, "Last batch", fmt.Sprintf("#%d at %s", tr.LastSeq, a.when(tr.LastBatchAt)),
				"Batches", strconv.FormatUint(tr.Batches, 10),
				"Dropped", strconv.FormatUint(tr.Dropped, 10)+" (from the node manager's spool)",
				"Lost", strconv.FormatUint(tr.Lost, 10)+" (never arrived)")
		}
		if c := h.Capabilities; c != nil {
			pairs = append(pairs, "Gateway version", c.GatewayVersion, "Feature level", strconv.Itoa(c.FeatureLevel),
				"Plugin dir", c.PluginDir, "Plugins", strings.Join(c.Plugins, ","))
		}
		fields(w, pairs...)
	})
}

func (a *app) instanceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "instance",
		Short: "Manage instances, the gateway processes of a group on a host",
	}
	cmd.AddCommand(a.instanceListCommand(), a.instanceCreateCommand(), a.instanceGetCommand(),
		a.instanceUpdateCommand(), a.instanceDeleteCommand(), a.instanceRestartCommand())
	return cmd
}

func (a *app) instanceListCommand() *cobra.Command {
	var f client.InstanceFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List instances with their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			instances, err := c.ListInstances(cmd.Context(), f)
			if err != nil {
				return err
			}
			return a.render(cmd, instances, func(w io.Writer) { a.instanceTable(w, instances) })
		},
	}
	cmd.Flags().StringVar(&f.Group, "group", "", "only the instances of this group")
	cmd.Flags().StringVar(&f.Host, "host", "", "only the instances on this host")
	cmd.Flags().StringVar(&f.Status, "status", "", `only instances with this status ("Healthy", "Lost Connection"…)`)
	return cmd
}

func (a *app) instanceTable(w io.Writer, instances []apitypes.Instance) {
	t := newTable(w, "NAME", "GROUP", "HOST", "STATUS", "DEPLOYMENT", "LAST HEARTBEAT")
	for _, i := range instances {
		var deployment, heartbeat string
		if i.Observed != nil {
			deployment = number(i.Observed.AppliedDeployment)
			heartbeat = a.when(i.Observed.LastHeartbeat)
		}
		t.row(i.Name, i.Group, i.Host, i.Status, deployment, heartbeat)
	}
	t.flush()
}

func (a *app) printInstance(cmd *cobra.Command, i apitypes.Instance) error {
	return a.render(cmd, i, func(w io.Writer) {
		pairs := []string{
			"Name", i.Name,
			"Group", i.Group,
			"Host", i.Host,
			"Listen", i.Listen,
			"TLS listen", i.TLSListen,
			"Status listen", i.StatusListen,
			"Gossip listen", i.GossipListen,
			"Status", i.Status,
			"Created", a.when(i.CreatedAt),
			"Updated", a.when(i.UpdatedAt),
		}
		if o := i.Observed; o != nil {
			pairs = append(pairs,
				"Last heartbeat", a.when(o.LastHeartbeat),
				"Deployment", number(o.AppliedDeployment),
				"Checksum", o.AppliedChecksum,
				"Ready", strconv.FormatBool(o.Ready),
				"Process", o.Process,
				"PID", strconv.Itoa(o.PID),
				"Restarts", strconv.Itoa(o.Restarts),
				"Last error", o.LastError,
				"Gateway version", versionText(o.GatewayVersion, o.FeatureLevel))
			if st := o.Settings; st != nil {
				pairs = append(pairs, "Log level", orDash(st.LogLevel), "Access log", percentText(st.AccessLogPercent),
					"Trace", runningTrace(a, *st))
			}
		}
		if i.Unreachable {
			pairs = append(pairs, "Unreachable by", strings.Join(i.UnreachableBy, ","))
		}
		fields(w, pairs...)
	})
}

// instanceFlags are the desired state an operator writes.
func instanceFlags(cmd *cobra.Command, i *apitypes.Instance) {
	fs := cmd.Flags()
	fs.StringVar(&i.Group, "group", "", "group the instance serves")
	fs.StringVar(&i.Host, "host", "", "host the instance runs on")
	fs.StringVar(&i.Listen, "listen", "", `HTTP traffic address, e.g. ":8080" (empty: the gateway's default)`)
	fs.StringVar(&i.TLSListen, "tls-listen", "", `HTTPS traffic address, e.g. ":8443"`)
	fs.StringVar(&i.StatusListen, "status-listen", "", `status address, e.g. ":8085"`)
	fs.StringVar(&i.GossipListen, "gossip-listen", "", `gossip address with the group's peers, TCP and UDP, e.g. ":7946" (empty: the first free port from 7946 up on the host)`)
}

func (a *app) instanceCreateCommand() *cobra.Command {
	var in apitypes.Instance
	cmd := &cobra.Command{
		Use:     "create NAME --group G --host H",
		Short:   "Declare an instance of a group on a host",
		Example: `  gatehouse instance create web-1 --group web --host node-1 --listen :8080 --tls-listen :8443`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			in.Name = args[0]
			out, err := c.CreateInstance(cmd.Context(), in)
			if err != nil {
				return fmt.Errorf("create instance %s: %w", args[0], err)
			}
			return a.printInstance(cmd, out)
		},
	}
	instanceFlags(cmd, &in)
	_ = cmd.MarkFlagRequired("group")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

func (a *app) instanceGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show an instance with its status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			i, err := c.GetInstance(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printInstance(cmd, i)
		},
	}
}

func (a *app) instanceUpdateCommand() *cobra.Command {
	var in apitypes.Instance
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change an instance's group, host or addresses",
		Long: `Change an instance's desired state; what no flag mentions is kept. An empty
value (--tls-listen "") clears an address.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			cur, err := c.GetInstance(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fs := cmd.Flags()
			for flag, field := range map[string]struct{ to, from *string }{
				"group":         {&cur.Group, &in.Group},
				"host":          {&cur.Host, &in.Host},
				"listen":        {&cur.Listen, &in.Listen},
				"tls-listen":    {&cur.TLSListen, &in.TLSListen},
				"status-listen": {&cur.StatusListen, &in.StatusListen},
				"gossip-listen": {&cur.GossipListen, &in.GossipListen},
			} {
				if fs.Changed(flag) {
					*field.to = *field.from
				}
			}
			// Only the desired state is written.
			cur.Status, cur.Observed = "", nil
			out, err := c.UpdateInstance(cmd.Context(), cur)
			if err != nil {
				return fmt.Errorf("update instance %s: %w", args[0], err)
			}
			return a.printInstance(cmd, out)
		},
	}
	instanceFlags(cmd, &in)
	return cmd
}

func (a *app) instanceDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an instance",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteInstance(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete instance %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted instance %s.\n", args[0])
			return nil
		},
	}
}
