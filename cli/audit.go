package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/client"
)

func (a *app) auditCommand() *cobra.Command {
	var (
		f            client.AuditFilter
		since, until string
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log, newest first",
		Long: `Show the audit log, newest entry first: every administrative action with
who did it, on what, with what result, from where. --since and --until take
an RFC 3339 time or a duration back from now ("1h"; "168h" for a week). At
most --limit entries are shown; to page back, give --before the SEQ of the
last entry shown.`,
		Example: `  gatehouse audit --group web --since 24h
  gatehouse audit --user alice --action deployment.create --limit 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.Since, err = a.parseTime("since", since); err != nil {
				return err
			}
			if f.Until, err = a.parseTime("until", until); err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			entries, err := c.Audit(cmd.Context(), f)
			if err != nil {
				return err
			}
			return a.render(cmd, entries, func(w io.Writer) {
				t := newTable(w, "SEQ", "TIME", "USER", "ACTION", "TARGET", "RESULT", "STATUS", "SOURCE")
				for _, e := range entries {
					status := ""
					if e.Status != 0 {
						status = strconv.Itoa(e.Status)
					}
					t.row(strconv.FormatUint(e.Seq, 10), a.when(e.Time), e.User, e.Action, e.Target, e.Result, status, e.Source)
				}
				t.flush()
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.User, "user", "", "only the actions of this user")
	fs.StringVar(&f.Action, "action", "", `only this action, e.g. "deployment.create"`)
	fs.StringVar(&f.Group, "group", "", "only the actions on this group")
	fs.StringVar(&since, "since", "", "only entries from this time on (RFC 3339, or a duration ago)")
	fs.StringVar(&until, "until", "", "only entries before this time (RFC 3339, or a duration ago)")
	fs.IntVar(&f.Limit, "limit", 50, "at most this many entries")
	fs.Uint64Var(&f.Before, "before", 0, "only entries older than this SEQ")
	return cmd
}

// parseTime reads an RFC 3339 time or a duration before now; empty is
// the zero time.
func (a *app) parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return a.now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time (2026-03-01T12:00:00Z) or a duration (1h)", flag, s)
	}
	return t, nil
}
