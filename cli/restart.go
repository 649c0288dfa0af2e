package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// Defaults of instance restart.
const (
	defaultRestartTimeout = 60 * time.Second
	restartPoll           = 250 * time.Millisecond
)

func (a *app) instanceRestartCommand() *cobra.Command {
	var (
		timeout time.Duration
		noWait  bool
	)
	cmd := &cobra.Command{
		Use:   "restart NAME",
		Short: "Restart an instance's gateway through its node manager, and wait until it is ready again",
		Long: `Ask the admin node to have the instance's node manager restart its gateway
(permission instance:operate), then wait until the instance's heartbeats show
it ready under a new process. The node manager starts the new process beside
the old one, on the same sockets, and the old one drains once the new one
serves: no request fails. The request is kept by the admin node: a node
manager that is away restarts the gateway when it comes back. Exits non-zero,
saying why, when the instance is not ready again within --timeout.`,
		Example: `  gatehouse instance restart web-1
  gatehouse instance restart web-1 --no-wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, not %s", timeout)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			r, err := c.RestartInstance(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("restart instance %s: %w", args[0], err)
			}
			if noWait {
				return a.render(cmd, r, func(w io.Writer) {
					fmt.Fprintf(w, "Restart of instance %s requested (generation %d); its node manager on host %s restarts it when it next hears from the admin node.\n",
						r.Instance, r.Generation, r.Host)
				})
			}
			// Progress goes to stderr, so that stdout holds only the
			// result, in the format -o asks for.
			progress := cmd.ErrOrStderr()
			fmt.Fprintf(progress, "Restart of instance %s requested (generation %d); waiting up to %s for it to be ready again...\n", r.Instance, r.Generation, timeout)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			last := ""
			for {
				i, err := c.GetInstance(ctx, r.Instance)
				if err != nil && ctx.Err() == nil {
					return fmt.Errorf("follow the restart of instance %s: %w", r.Instance, err)
				}
				if err == nil {
					done, why := restartProgress(r, i)
					if done {
						return a.render(cmd, i, func(w io.Writer) {
							fmt.Fprintf(w, "Instance %s is ready again: %s.\n", i.Name, newProcess(r, i.Observed))
						})
					}
					if why != last {
						fmt.Fprintf(progress, "  %s\n", why)
					}
					last = why
				}
				select {
				case <-ctx.Done():
					if cmd.Context().Err() != nil {
						return cmd.Context().Err()
					}
					return fmt.Errorf("instance %s is not ready again after %s: %s", r.Instance, timeout, last)
				case <-time.After(restartPoll):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultRestartTimeout, "how long to wait for the instance to be ready again")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the restart is requested")
	return cmd
}

// restartProgress says whether the instance came back from the restart r
// asked for (ready under a process of r's restart generation or a later
// one, in a heartbeat after the request), and when it did not yet, why.
// The generation, not the pid, says the restart happened: a process
// replaced for another reason meanwhile (a new release) is not it.
func restartProgress(r apitypes.InstanceRestart, i apitypes.Instance) (bool, string) {
	o := i.Observed
	switch {
	case o == nil || !o.LastHeartbeat.After(r.RequestedAt):
		last := "never"
		if o != nil {
			last = o.LastHeartbeat.UTC().Format(time.RFC3339)
		}
		return false, fmt.Sprintf("no heartbeat from the node manager of host %s since the restart was asked (last heartbeat: %s)", r.Host, last)
	case o.RestartGeneration < r.Generation && o.Pending && o.LastError != "":
		return false, fmt.Sprintf("the node manager could not replace the process (pid %d serves on): %s", o.PID, o.LastError)
	case o.RestartGeneration < r.Generation:
		return false, fmt.Sprintf("still a process of restart generation %d (pid %d): the node manager has not restarted it yet", o.RestartGeneration, o.PID)
	case !o.Ready:
		var detail []string
		if o.Process != "" {
			detail = append(detail, "process "+o.Process)
		}
		if o.LastError != "" {
			detail = append(detail, "last error: "+o.LastError)
		}
		what := "the new process"
		if o.PID != 0 {
			what = fmt.Sprintf("the new process (pid %d)", o.PID)
		}
		if len(detail) == 0 {
			return false, what + " is not ready yet"
		}
		return false, what + " is not ready: " + strings.Join(detail, ", ")
	}
	return true, ""
}

// newProcess describes the process that replaced r's.
func newProcess(r apitypes.InstanceRestart, o *apitypes.InstanceState) string {
	s := fmt.Sprintf("pid %d", o.PID)
	if r.PreviousPID != 0 {
		s += fmt.Sprintf(" (was %d)", r.PreviousPID)
	}
	return s + fmt.Sprintf(", %d restart(s)", o.Restarts)
}
