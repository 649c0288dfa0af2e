package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

// defaultRolloutTimeout bounds the wait of the commands that deploy.
const defaultRolloutTimeout = 60 * time.Second

// rolloutPoll bounds each blocking query of a roll-out, well within the
// client's request timeout.
const rolloutPoll = 30 * time.Second

// rolloutOptions are the flags of the commands that deploy: deploy,
// rollback, import and promote.
type rolloutOptions struct {
	noWait  bool
	timeout time.Duration
}

func (o *rolloutOptions) flags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.noWait, "no-wait", false, "return once the deployment is made, without waiting for the instances to apply it")
	cmd.Flags().DurationVar(&o.timeout, "timeout", defaultRolloutTimeout, "how long to wait for every instance of the group to apply the deployment")
}

func (o rolloutOptions) check() error {
	if !o.noWait && o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive (got %s); use --no-wait not to wait", o.timeout)
	}
	return nil
}

// deployResult is what the commands that deploy print with -o json: the
// deployment, whether one was made, and its roll-out when waited for.
type deployResult struct {
	Deployed bool `json:"deployed"`
	// Reason says why nothing was deployed.
	Reason string `json:"reason,omitempty"`
	*apitypes.Deployment
	Rollout *apitypes.Rollout `json:"rollout,omitempty"`
}

// importResult is import's and promote's deployResult.
type importResult struct {
	apitypes.Import
	Rollout *apitypes.Rollout `json:"rollout,omitempty"`
}

// progress is where lines about the roll-out go as it happens: standard
// output for people, standard error when standard output is a document.
func (a *app) progress(cmd *cobra.Command) io.Writer {
	if a.output == outputTable {
		return cmd.OutOrStdout()
	}
	return cmd.ErrOrStderr()
}

// waitRollout waits until deployment d has rolled out to every instance
// of its group, has failed (every instance settled, one or more refused it
// or stopped reporting), was superseded, or o.timeout passed, writing a
// line to w for each instance as it applies or refuses. It returns the
// last roll-out seen and an error unless the roll-out completed.
func (a *app) waitRollout(ctx context.Context, c *client.Client, w io.Writer, d apitypes.Deployment, o rolloutOptions) (*apitypes.Rollout, error) {
	deadline := time.Now().Add(o.timeout)
	number := fmt.Sprint(d.Number)
	var (
		r       apitypes.Rollout
		index   *uint64
		printed = map[string]string{}
	)
	for {
		var err error
		r, err = c.Rollout(ctx, d.Group, number, index, min(time.Until(deadline), rolloutPoll))
		if client.IsStatus(err, http.StatusForbidden) {
			return nil, fmt.Errorf("deployment %s #%d made, but its roll-out cannot be watched without permission %s (--no-wait does not watch): %w",
				d.Group, d.Number, "deployment:read", err)
		}
		if err != nil {
			return nil, fmt.Errorf("deployment %s #%d made, but watching its roll-out failed: %w", d.Group, d.Number, err)
		}
		for _, in := range r.Instances {
			if printed[in.Name] == in.State || (in.State != apitypes.InstanceApplied && in.State != apitypes.InstanceRefused && in.State != apitypes.InstanceUnreachable && in.State != apitypes.InstanceSkipped) {
				continue
			}
			printed[in.Name] = in.State
			if in.State == apitypes.InstanceApplied {
				fmt.Fprintf(w, "  %s: applied #%d\n", in.Name, d.Number)
			} else {
				fmt.Fprintf(w, "  %s: %s: %s\n", in.Name, in.State, in.Reason)
			}
		}
		if r.Done || !time.Now().Before(deadline) {
			break
		}
		index = &r.Index
	}
	switch r.State {
	case apitypes.RolloutComplete:
		if r.Total == 0 {
			fmt.Fprintf(w, "group %s has no instances: nothing to roll out\n", d.Group)
		} else {
			fmt.Fprintf(w, "rolled out #%d: %d/%d instances applied it", d.Number, r.Applied, r.Total)
			if r.Skipped > 0 {
				fmt.Fprintf(w, ", %d skipped (partial deployment)", r.Skipped)
			}
			fmt.Fprintln(w)
		}
		return &r, nil
	case apitypes.RolloutSuperseded:
		return &r, fmt.Errorf("deployment %s #%d was superseded by #%d before it rolled out (%d/%d instances had applied it)",
			d.Group, d.Number, r.CurrentDeployment, r.Applied, r.Total)
	case apitypes.RolloutFailed:
		return &r, rolloutError(fmt.Sprintf("roll-out of %s #%d failed", d.Group, d.Number), r)
	}
	return &r, rolloutError(fmt.Sprintf("roll-out of %s #%d not complete after %s", d.Group, d.Number, o.timeout), r)
}

// rolloutError names each instance that did not apply the deployment,
// with its state and the reason it gave.
func rolloutError(head string, r apitypes.Rollout) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d instances did not apply it", head, r.Total-r.Applied-r.Skipped, r.Total)
	if r.Skipped > 0 {
		fmt.Fprintf(&b, " (%d skipped: partial deployment)", r.Skipped)
	}
	for _, in := range r.Instances {
		if in.State == apitypes.InstanceApplied || in.State == apitypes.InstanceSkipped {
			continue
		}
		fmt.Fprintf(&b, "\n  %s (host %s): %s: %s", in.Name, in.Host, in.State, in.Reason)
	}
	return errors.New(b.String())
}
