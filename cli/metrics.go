package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

func (a *app) metricsCommand() *cobra.Command {
	var (
		m        client.MetricsQuery
		from, to string
	)
	cmd := &cobra.Command{
		Use:   "metrics --group G",
		Short: "Show a group's traffic over time: rate, errors, latency, bytes",
		Long: `Show a group's traffic, as every node manager of the domain reported it, by
step: requests, rate (per second), 4xx and 5xx ratios, latency quantiles
(from the merged histograms of every instance) and bytes, then the totals
of the range. --service, --route, --consumer and --instance narrow it down;
--by adds the range's totals per service, route, consumer or instance.

The range is the last --since (1h by default), or --from to --to (RFC 3339,
or a duration ago). The step is picked from the range unless --step says:
10s up to an hour, 1m up to a day. Data older than 24 hours is kept by the
minute only, so a finer step is refused for it.`,
		Example: `  gatehouse metrics --group web --since 1h
  gatehouse metrics --group web --route get-order --since 24h --step 5m
  gatehouse metrics --group web --since 15m --by route -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if m.From, err = a.parseTime("from", from); err != nil {
				return err
			}
			if m.To, err = a.parseTime("to", to); err != nil {
				return err
			}
			if !m.From.IsZero() || !m.To.IsZero() {
				if cmd.Flags().Changed("since") {
					return fmt.Errorf("give --since, or --from and --to, not both")
				}
				m.Since = 0
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			ans, err := c.Metrics(cmd.Context(), m)
			if err != nil {
				return fmt.Errorf("metrics of group %s: %w", m.Group, err)
			}
			return a.render(cmd, ans, func(w io.Writer) {
				a.metricsTable(w, ans)
				notes(cmd.ErrOrStderr(), ans)
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&m.Group, "group", "", "group whose traffic to show")
	fs.StringVar(&m.Service, "service", "", "only this service")
	fs.StringVar(&m.Route, "route", "", "only this route")
	fs.StringVar(&m.Consumer, "consumer", "", "only this consumer")
	fs.StringVar(&m.Instance, "instance", "", "only this instance")
	fs.DurationVar(&m.Since, "since", time.Hour, "the range: this long up to now")
	fs.StringVar(&from, "from", "", "start of the range (RFC 3339, or a duration ago)")
	fs.StringVar(&to, "to", "", "end of the range (RFC 3339, or a duration ago; default now)")
	fs.DurationVar(&m.Step, "step", 0, "length of a row, a multiple of 10s (default: picked from the range)")
	fs.StringVar(&m.By, "by", "", "also total the range per service, route, consumer or instance")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

func (a *app) metricsTable(w io.Writer, ans apitypes.MetricsAnswer) {
	t := newTable(w, "TIME", "REQUESTS", "RATE", "2XX", "4XX", "5XX", "4XX%", "5XX%", "P50", "P95", "P99", "IN", "OUT")
	row := func(first string, v apitypes.MetricsValues) {
		t.row(first, strconv.FormatUint(v.Requests, 10), rate(v.Rate), strconv.FormatUint(v.Status.S2xx, 10),
			strconv.FormatUint(v.Status.S4xx, 10), strconv.FormatUint(v.Status.S5xx, 10), percent(v.ErrorRatio4xx),
			percent(v.ErrorRatio5xx), latency(v.P50), latency(v.P95), latency(v.P99), size(v.BytesIn), size(v.BytesOut))
	}
	for _, p := range ans.Points {
		row(a.when(p.Time), p.MetricsValues)
	}
	row("TOTAL", ans.Totals)
	t.flush()
	if len(ans.Breakdown) == 0 {
		return
	}
	fmt.Fprintln(w)
	t = newTable(w, "SERVICE", "ROUTE", "CONSUMER", "INSTANCE", "REQUESTS", "RATE", "4XX%", "5XX%", "P50", "P95", "P99")
	for _, b := range ans.Breakdown {
		t.row(b.Service, b.Route, b.Consumer, b.Instance, strconv.FormatUint(b.Requests, 10), rate(b.Rate),
			percent(b.ErrorRatio4xx), percent(b.ErrorRatio5xx), latency(b.P50), latency(b.P95), latency(b.P99))
	}
	t.flush()
}

// notes says on w what makes an answer's counts less than exact.
func notes(w io.Writer, ans apitypes.MetricsAnswer) {
	if ans.Folded {
		fmt.Fprintf(w, "note: the group has more routes or consumers than the admin node keeps apart: the rest are counted as %s\n", apitypes.MetricsOther)
	}
	if ans.DroppedBatches > 0 {
		batches := "batches"
		if ans.DroppedBatches == 1 {
			batches = "batch"
		}
		fmt.Fprintf(w, "note: the node managers of the group's hosts lost %d %s of counts (gatehouse host list shows which)\n", ans.DroppedBatches, batches)
	}
}

// topWindow is what gatehouse top shows: the last minute of complete
// points. Node managers send every 10 s, so the newest 10 s point is still
// filling up and is left out.
const topWindow = time.Minute

func (a *app) topCommand() *cobra.Command {
	var (
		group    string
		by       string
		interval time.Duration
		once     bool
	)
	cmd := &cobra.Command{
		Use:   "top --group G",
		Short: "Show a group's busiest routes live: rate, errors, latency over the last minute",
		Long: `Show a live table of a group's traffic per service and route over the last
minute: rate (requests per second), 4xx and 5xx ratios, and the median and
99th percentile latency, busiest first. The minute ends 10 to 20 seconds
ago, so that every node manager's counts of it have arrived. The table is
redrawn every --interval until Ctrl-C; --once prints it once and exits.`,
		Example: `  gatehouse top --group web
  gatehouse top --group web --by consumer --once`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval %s: want a positive duration", interval)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := cmd.OutOrStdout()
			f, isFile := w.(*os.File)
			live := !once && isFile && term.IsTerminal(int(f.Fd()))
			for {
				err := a.topOnce(ctx, cmd, c, group, by, live)
				if once {
					return err
				}
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					fmt.Fprintln(cmd.ErrOrStderr(), "gatehouse:", err)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&group, "group", "", "group whose traffic to show")
	fs.StringVar(&by, "by", apitypes.MetricsByRoute, "one row per service, route, consumer or instance")
	fs.DurationVar(&interval, "interval", 2*time.Second, "how often to redraw")
	fs.BoolVar(&once, "once", false, "print the table once and exit")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

// topOnce prints one table of gatehouse top; live clears the terminal
// first, so that the table is redrawn in place.
func (a *app) topOnce(ctx context.Context, cmd *cobra.Command, c *client.Client, group, by string, live bool) error {
	to := a.now().Add(-10 * time.Second).Truncate(10 * time.Second)
	ans, err := c.Metrics(ctx, client.MetricsQuery{Group: group, From: to.Add(-topWindow), To: to, Step: 10 * time.Second, By: by})
	if err != nil {
		return fmt.Errorf("metrics of group %s: %w", group, err)
	}
	if a.output != outputTable {
		return a.print(cmd.OutOrStdout(), ans)
	}
	w := cmd.OutOrStdout()
	if live {
		fmt.Fprint(w, "\x1b[H\x1b[2J")
	}
	// A minute without requests has no ratios and no latency: "-", as
	// in the table, rather than blanks.
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(w, "group %s, %s to %s: %s req/s, %s 4xx, %s 5xx, p99 %s\n\n", group, a.when(ans.From), a.when(ans.To),
		rate(ans.Totals.Rate), dash(percent(ans.Totals.ErrorRatio4xx)), dash(percent(ans.Totals.ErrorRatio5xx)), dash(latency(ans.Totals.P99)))
	t := newTable(w, "SERVICE", "ROUTE", "CONSUMER", "INSTANCE", "RATE", "4XX%", "5XX%", "P50", "P99")
	for _, b := range ans.Breakdown {
		t.row(b.Service, b.Route, b.Consumer, b.Instance, rate(b.Rate), percent(b.ErrorRatio4xx), percent(b.ErrorRatio5xx), latency(b.P50), latency(b.P99))
	}
	t.flush()
	notes(cmd.ErrOrStderr(), ans)
	return nil
}

func rate(r float64) string { return strconv.FormatFloat(r, 'f', 2, 64) }

// percent prints a ratio as a percentage; empty without requests.
func percent(r *float64) string {
	if r == nil {
		return ""
	}
	return strconv.FormatFloat(*r*100, 'f', 1, 64) + "%"
}

// latency prints seconds as a duration to 10 µs (the finest bucket is
// 0.5 ms); empty without requests.
func latency(s *float64) string {
	if s == nil {
		return ""
	}
	return time.Duration(*s * float64(time.Second)).Round(10 * time.Microsecond).String()
}

// size prints a byte count with a binary unit.
func size(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.FormatUint(n, 10) + "B"
	}
	f, i := float64(n)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + units[i:i+1] + "iB"
}
