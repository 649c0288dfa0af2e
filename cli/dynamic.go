package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

// settingsTarget is the --group or --instance whose dynamic settings a
// command reads or changes: exactly one of them.
type settingsTarget struct{ group, instance string }

func (s *settingsTarget) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.group, "group", "", "the group whose gateways' settings to use")
	cmd.Flags().StringVar(&s.instance, "instance", "", "the instance whose own settings to use (they win over its group's)")
}

func (s settingsTarget) check() error {
	if (s.group == "") == (s.instance == "") {
		return errors.New("give --group or --instance, one of them")
	}
	return nil
}

// current reads the settings of the target's level, without a trace
// that has ended (written back, it would be refused).
func (s settingsTarget) current(ctx context.Context, c *client.Client) (apitypes.GatewaySettings, error) {
	var gs apitypes.GatewaySettings
	var err error
	if s.group != "" {
		gs, err = c.GroupSettings(ctx, s.group)
	} else {
		var is apitypes.InstanceSettings
		is, err = c.InstanceSettings(ctx, s.instance)
		gs = is.Own
	}
	if gs.Trace != nil && !gs.Trace.Until.After(time.Now()) {
		gs.Trace = nil
	}
	return gs, err
}

// write replaces the settings of the target's level, and returns what the
// command prints: the group's settings, or the instance's view.
func (s settingsTarget) write(ctx context.Context, c *client.Client, gs apitypes.GatewaySettings) (any, error) {
	if s.group != "" {
		return c.SetGroupSettings(ctx, s.group, gs)
	}
	return c.SetInstanceSettings(ctx, s.instance, gs)
}

func (a *app) settingsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Change what gateways log at run time: log level, access log, request tracing",
		Long: `Dynamic settings of gateways, per group (--group) or per instance (--instance,
whose settings win over its group's, field by field): the log level, the access
log (on or off, with the percentage of requests logged) and the tracing of the
requests of one route for a while. They apply at run time, within about a
second, with no restart and no redeploy: the admin node hands them to each
instance's node manager, which delivers them to its running gateway.

Not to be confused with "gatehouse env", the environments' values that
placeholders of configurations resolve to.`,
	}
	cmd.AddCommand(a.settingsGetCommand(), a.settingsSetCommand(), a.settingsUnsetCommand())
	return cmd
}

func (a *app) settingsGetCommand() *cobra.Command {
	var target settingsTarget
	cmd := &cobra.Command{
		Use:   "get (--group G | --instance I)",
		Short: "Show the dynamic settings of a group, or of an instance with what its gateway runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := target.check(); err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			if target.group != "" {
				gs, err := c.GroupSettings(cmd.Context(), target.group)
				if err != nil {
					return err
				}
				return a.render(cmd, gs, func(w io.Writer) { a.printSettings(w, "group "+target.group, gs) })
			}
			is, err := c.InstanceSettings(cmd.Context(), target.instance)
			if err != nil {
				return err
			}
			return a.render(cmd, is, func(w io.Writer) { a.printInstanceSettings(w, is) })
		},
	}
	target.flags(cmd)
	return cmd
}

func (a *app) settingsSetCommand() *cobra.Command {
	var (
		target    settingsTarget
		logLevel  string
		accessLog string
		sample    int
		route     string
		traceFor  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set (--group G | --instance I) [--log-level L] [--access-log on|off] [--access-log-sample N] [--trace-route R --trace-for D]",
		Short: "Change dynamic settings of a group's gateways or of one instance, keeping the others",
		Long: `Change the given settings of the group or instance; the settings not given stay
as they are (gatehouse settings unset removes some). Needs permission
settings:write on the group.

  --log-level           trace, debug, info, warn or error
  --access-log          on or off; --access-log-sample N logs N% of the requests
                        (1 to 100, evenly spread; default 100)
  --trace-route         logs each request of the route ("route", or
                        "service/route") for --trace-for (at most 24h); the
                        gateways stop by themselves when the time is up

Access log and trace lines are info lines of the gateway's log.`,
		Example: `  gatehouse settings set --group web --log-level debug
  gatehouse settings set --group web --access-log on --access-log-sample 10
  gatehouse settings set --instance web-2 --trace-route orders --trace-for 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := target.check(); err != nil {
				return err
			}
			fs := cmd.Flags()
			if !fs.Changed("log-level") && !fs.Changed("access-log") && !fs.Changed("access-log-sample") && !fs.Changed("trace-route") {
				return errors.New("nothing to set: give --log-level, --access-log or --trace-route")
			}
			if fs.Changed("trace-route") != fs.Changed("trace-for") {
				return errors.New("--trace-route and --trace-for go together")
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			gs, err := target.current(cmd.Context(), c)
			if err != nil {
				return err
			}
			if fs.Changed("log-level") {
				gs.LogLevel = logLevel
			}
			switch {
			case fs.Changed("access-log") && accessLog == "off":
				if fs.Changed("access-log-sample") {
					return errors.New("--access-log-sample is for --access-log on")
				}
				gs.AccessLog = &apitypes.AccessLogSetting{Enabled: false}
			case fs.Changed("access-log") && accessLog == "on", fs.Changed("access-log-sample"):
				if gs.AccessLog == nil || !gs.AccessLog.Enabled {
					if !fs.Changed("access-log") {
						return errors.New("--access-log-sample needs the access log on: add --access-log on")
					}
					gs.AccessLog = &apitypes.AccessLogSetting{Enabled: true}
				}
				if fs.Changed("access-log-sample") {
					gs.AccessLog.SamplePercent = sample
				}
			case fs.Changed("access-log"):
				return fmt.Errorf("--access-log is on or off, not %q", accessLog)
			}
			if fs.Changed("trace-route") {
				gs.Trace = &apitypes.TraceSetting{Route: route, For: traceFor.String()}
			}
			out, err := target.write(cmd.Context(), c, gs)
			if err != nil {
				return err
			}
			return a.renderSettings(cmd, target, out)
		},
	}
	target.flags(cmd)
	cmd.Flags().StringVar(&logLevel, "log-level", "", "log level: trace, debug, info, warn or error")
	cmd.Flags().StringVar(&accessLog, "access-log", "", "access log on or off")
	cmd.Flags().IntVar(&sample, "access-log-sample", 100, "percentage of requests the access log logs (1 to 100)")
	cmd.Flags().StringVar(&route, "trace-route", "", `route whose requests to trace ("route" or "service/route")`)
	cmd.Flags().DurationVar(&traceFor, "trace-for", 0, "how long to trace (at most 24h)")
	return cmd
}

func (a *app) settingsUnsetCommand() *cobra.Command {
	var (
		target                    settingsTarget
		level, access, trace, all bool
	)
	cmd := &cobra.Command{
		Use:   "unset (--group G | --instance I) (--log-level | --access-log | --trace | --all)",
		Short: "Remove dynamic settings of a group or an instance: the group's, or the gateway's start-up ones, apply again",
		Example: `  gatehouse settings unset --group web --log-level
  gatehouse settings unset --instance web-2 --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := target.check(); err != nil {
				return err
			}
			if !level && !access && !trace && !all {
				return errors.New("nothing to unset: give --log-level, --access-log, --trace or --all")
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			gs, err := target.current(cmd.Context(), c)
			if err != nil {
				return err
			}
			if level || all {
				gs.LogLevel = ""
			}
			if access || all {
				gs.AccessLog = nil
			}
			if trace || all {
				gs.Trace = nil
			}
			out, err := target.write(cmd.Context(), c, gs)
			if err != nil {
				return err
			}
			return a.renderSettings(cmd, target, out)
		},
	}
	target.flags(cmd)
	cmd.Flags().BoolVar(&level, "log-level", false, "remove the log level")
	cmd.Flags().BoolVar(&access, "access-log", false, "remove the access log setting")
	cmd.Flags().BoolVar(&trace, "trace", false, "stop tracing")
	cmd.Flags().BoolVar(&all, "all", false, "remove every setting")
	return cmd
}

// renderSettings prints what set or unset wrote.
func (a *app) renderSettings(cmd *cobra.Command, target settingsTarget, out any) error {
	return a.render(cmd, out, func(w io.Writer) {
		switch v := out.(type) {
		case apitypes.GatewaySettings:
			a.printSettings(w, "group "+target.group, v)
		case apitypes.InstanceSettings:
			a.printInstanceSettings(w, v)
		}
	})
}

func (a *app) printSettings(w io.Writer, what string, gs apitypes.GatewaySettings) {
	fmt.Fprintf(w, "Settings of %s:\n", what)
	t := newTable(w, "SETTING", "VALUE")
	t.row("log level", orDash(gs.LogLevel))
	t.row("access log", accessLogText(gs.AccessLog))
	t.row("trace", traceText(a, gs.Trace))
	t.flush()
}

func (a *app) printInstanceSettings(w io.Writer, is apitypes.InstanceSettings) {
	fmt.Fprintf(w, "Settings of instance %s (group %s):\n", is.Instance, is.Group)
	t := newTable(w, "SETTING", "GROUP", "INSTANCE", "EFFECTIVE", "GATEWAY-RUNS")
	applied := apitypes.AgentGatewaySettings{}
	if is.Applied != nil {
		applied = *is.Applied
	}
	t.row("log level", orDash(is.OfGroup.LogLevel), orDash(is.Own.LogLevel), orDash(is.Effective.LogLevel), orDash(applied.LogLevel))
	t.row("access log", accessLogText(is.OfGroup.AccessLog), accessLogText(is.Own.AccessLog),
		percentText(is.Effective.AccessLogPercent), percentText(applied.AccessLogPercent))
	t.row("trace", traceText(a, is.OfGroup.Trace), traceText(a, is.Own.Trace),
		runningTrace(a, is.Effective), runningTrace(a, applied))
	t.flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func accessLogText(al *apitypes.AccessLogSetting) string {
	switch {
	case al == nil:
		return "-"
	case !al.Enabled:
		return "off"
	}
	return "on, " + strconv.Itoa(al.SamplePercent) + "%"
}

func percentText(p int) string {
	if p == 0 {
		return "off"
	}
	return "on, " + strconv.Itoa(p) + "%"
}

func traceText(a *app, t *apitypes.TraceSetting) string {
	if t == nil {
		return "-"
	}
	return t.Route + " until " + a.when(t.Until)
}

func runningTrace(a *app, s apitypes.AgentGatewaySettings) string {
	if s.TraceRoute == "" {
		return "-"
	}
	return s.TraceRoute + " until " + a.when(s.TraceUntil)
}

// versionText is a gateway's version with its feature level.
func versionText(version string, level int) string {
	if version == "" {
		return "-"
	}
	return fmt.Sprintf("%s (feature level %d)", version, level)
}
