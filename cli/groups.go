package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

// parseLabels reads repeated k=v flags.
func parseLabels(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want key=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func (a *app) groupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Manage groups, the sets of instances serving one configuration",
	}
	cmd.AddCommand(a.groupListCommand(), a.groupCreateCommand(), a.groupGetCommand(),
		a.groupUpdateCommand(), a.groupDeleteCommand(), a.groupSummaryCommand(), a.groupGatewayCommand())
	return cmd
}

func (a *app) groupListCommand() *cobra.Command {
	var selector string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the groups you may read",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			groups, err := c.ListGroups(cmd.Context(), selector)
			if err != nil {
				return err
			}
			return a.render(cmd, groups, func(w io.Writer) { a.groupTable(w, groups) })
		},
	}
	cmd.Flags().StringVar(&selector, "selector", "", "only groups with these labels, k=v[,k=v…]")
	return cmd
}

func (a *app) groupTable(w io.Writer, groups []apitypes.Group) {
	t := newTable(w, "NAME", "LABELS", "DESCRIPTION", "UPDATED")
	for _, g := range groups {
		t.row(g.Name, labels(g.Labels), g.Description, a.when(g.UpdatedAt))
	}
	t.flush()
}

func (a *app) printGroup(cmd *cobra.Command, g apitypes.Group) error {
	return a.render(cmd, g, func(w io.Writer) {
		fields(w,
			"Name", g.Name,
			"Type", g.Type,
			"Labels", labels(g.Labels),
			"Description", g.Description,
			"Environment", g.Environment,
			"Created", a.when(g.CreatedAt),
			"Updated", a.when(g.UpdatedAt),
			"Version", number(g.Version))
	})
}

func (a *app) groupCreateCommand() *cobra.Command {
	var (
		labelFlags  []string
		description string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a group",
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
			g, err := c.CreateGroup(cmd.Context(), apitypes.Group{Name: args[0], Labels: l, Description: description})
			if err != nil {
				return fmt.Errorf("create group %s: %w", args[0], err)
			}
			return a.printGroup(cmd, g)
		},
	}
	cmd.Flags().StringArrayVar(&labelFlags, "label", nil, "label k=v (repeatable)")
	cmd.Flags().StringVar(&description, "description", "", "description")
	return cmd
}

func (a *app) groupGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			g, err := c.GetGroup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printGroup(cmd, g)
		},
	}
}

func (a *app) groupUpdateCommand() *cobra.Command {
	var (
		set, remove    []string
		description    string
		environment    string
		gatewayVersion string
		onFailure      string
		maxUnavailable int
		wait           bool
		timeout        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a group's labels, description, environment or gateway release",
		Long: `Change a group's labels, description or environment (whose values and
secrets resolve the placeholders of its deployments; "" for none); what no
flag mentions is kept. The
group is read and written back at the version read, so that an edit made
by someone else in between is refused rather than undone.`,
		Example: `  gatehouse group update web --label env=prod --remove-label canary --description "public API"
  gatehouse group update web --env prod
  gatehouse group update web --gateway-version 1.4.0 --max-unavailable 2 --wait
  gatehouse group update web --gateway-version 1.4.0 --on-failure pause --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if fs.Changed("max-unavailable") && maxUnavailable < 1 {
				return fmt.Errorf("--max-unavailable must be at least 1, not %d", maxUnavailable)
			}
			if (fs.Changed("max-unavailable") || fs.Changed("wait") || fs.Changed("on-failure")) && !fs.Changed("gateway-version") {
				return errors.New("--max-unavailable, --on-failure and --wait are for --gateway-version")
			}
			if onFailure != "rollback" && onFailure != "pause" {
				return fmt.Errorf(`--on-failure must be "rollback" or "pause", not %q`, onFailure)
			}
			if fs.Changed("gateway-version") {
				if fs.Changed("label") || fs.Changed("remove-label") || fs.Changed("description") || fs.Changed("env") {
					return errors.New("--gateway-version starts a rolling upgrade: change labels, description or environment in another command")
				}
				in := apitypes.GroupGatewayUpdate{Version: gatewayVersion, MaxUnavailable: maxUnavailable}
				if fs.Changed("on-failure") {
					in.OnFailure = onFailure
				}
				return a.setGroupGateway(cmd, args[0], in, wait, timeout)
			}
			add, err := parseLabels("label", set)
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			g, err := c.GetGroup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.Labels == nil && len(add) > 0 {
				g.Labels = map[string]string{}
			}
			for k, v := range add {
				g.Labels[k] = v
			}
			for _, k := range remove {
				delete(g.Labels, k)
			}
			if cmd.Flags().Changed("description") {
				g.Description = description
			}
			if cmd.Flags().Changed("env") {
				g.Environment = environment
			}
			g, err = c.UpdateGroup(cmd.Context(), g, g.Version)
			if client.IsStatus(err, http.StatusConflict) {
				return fmt.Errorf("group %s changed while it was being updated; run the command again: %w", args[0], err)
			}
			if err != nil {
				return fmt.Errorf("update group %s: %w", args[0], err)
			}
			return a.printGroup(cmd, g)
		},
	}
	cmd.Flags().StringArrayVar(&set, "label", nil, "add or change label k=v (repeatable)")
	cmd.Flags().StringArrayVar(&remove, "remove-label", nil, "remove the label with this key (repeatable)")
	cmd.Flags().StringVar(&description, "description", "", "new description")
	cmd.Flags().StringVar(&environment, "env", "", `environment resolving the group's placeholders, one of "env list" ("" for none)`)
	cmd.Flags().StringVar(&gatewayVersion, "gateway-version", "", `move the group to this gateway release by a rolling upgrade ("" for the node managers' own binary; docs/upgrades.md)`)
	cmd.Flags().IntVar(&maxUnavailable, "max-unavailable", 0, "with --gateway-version: how many instances are replaced at once (default 1, or the group's last value)")
	cmd.Flags().StringVar(&onFailure, "on-failure", "rollback", `with --gateway-version: what a failed batch does: "rollback" (the whole group back to its release) or "pause" (the instances done stay; resume with the same --gateway-version, roll back with the previous one)`)
	cmd.Flags().BoolVar(&wait, "wait", false, "with --gateway-version: follow the rollout to its end; non-zero exit when it rolled back or paused on a failure")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait: how long to follow the rollout")
	return cmd
}

func (a *app) groupDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a group without instances, with its draft and deployments",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteGroup(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete group %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted group %s.\n", args[0])
			return nil
		},
	}
}

func (a *app) groupSummaryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "summary NAME",
		Short: "Show how far a group's current deployment has rolled out",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			s, err := c.GroupSummary(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.render(cmd, s, func(w io.Writer) { summary(w, s) })
		},
	}
}

func summary(w io.Writer, s apitypes.GroupSummary) {
	byStatus := make([]string, 0, len(s.ByStatus))
	for _, st := range slices.Sorted(maps.Keys(s.ByStatus)) {
		byStatus = append(byStatus, fmt.Sprintf("%s %d", st, s.ByStatus[st]))
	}
	pairs := []string{
		"Group", s.Group,
		"Deployment", number(s.CurrentDeployment),
		"Checksum", s.CurrentChecksum,
		"Instances", strconv.Itoa(s.Instances),
		"By status", strings.Join(byStatus, ", "),
		"Rollout", s.Rollout,
		"Complete", strconv.FormatBool(s.Complete),
	}
	// Only when there is something to say: both are exceptions.
	if len(s.Unreachable) > 0 {
		pairs = append(pairs, "Unreachable", strings.Join(s.Unreachable, ","))
	}
	if len(s.Drift) > 0 {
		drift := make([]string, len(s.Drift))
		for i, d := range s.Drift {
			drift[i] = d.Instance + " runs " + deploymentLabel(strconv.FormatUint(d.Deployment, 10))
		}
		pairs = append(pairs, "Drift", strings.Join(drift, ", "))
	}
	fields(w, pairs...)
	if len(s.Deployments) == 0 {
		return
	}
	fmt.Fprintln(w)
	t := newTable(w, "DEPLOYMENT", "INSTANCES")
	// Newest first; "0" (nothing reported) sorts last.
	nums := slices.SortedFunc(maps.Keys(s.Deployments), func(x, y string) int {
		nx, _ := strconv.ParseUint(x, 10, 64)
		ny, _ := strconv.ParseUint(y, 10, 64)
		return cmp.Compare(ny, nx)
	})
	for _, n := range nums {
		t.row(deploymentLabel(n), strings.Join(s.Deployments[n], ","))
	}
	t.flush()
}

// deploymentLabel names deployment number n as the summary shows it.
func deploymentLabel(n string) string {
	if n == "0" {
		return "none"
	}
	return "#" + n
}
