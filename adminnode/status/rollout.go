package status

import (
	"fmt"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"hash/fnv"
	"regexp"
	"time"
)

// RolloutView is one instance as a roll-out needs it.
type RolloutView struct {
	Name string
	Obs  Observation
	// Skipped says why a partial deployment left the instance out; empty
	// when it did not.
	Skipped string
}

// InstanceRollout is where one instance is in a roll-out.
type InstanceRollout struct {
	Name  string
	State string
	// Status is the instance's status against the deployment rolled out.
	Status string
	// Reason is why an instance is not applied: the error it reported, or
	// what is known of its silence.
	Reason string
}

// Rollout is where a deployment is in its roll-out to the group.
type Rollout struct {
	State   string
	Applied int
	// Skipped counts the instances a partial deployment left out and that
	// do not run it.
	Skipped   int
	Instances []InstanceRollout
	// Index changes whenever anything above changes, for blocking
	// queries; never 0.
	Index uint64
}

// Done reports whether the roll-out will not change any more by itself
// (complete, failed or superseded).
func (r Rollout) Done() bool { return r.State != apitypes.RolloutInProgress }

// RolloutOf says where deployment target is in its roll-out to the
// group's instances (views, in the order given) at now, current being the
// group's newest deployment number.
//
// Every instance of the group should run the deployment: an instance is
// declared on a host, so it always has a node manager to start it. An
// instance whose last report says it applied the deployment has, even if
// it has been silent since. One that is Lost Connection or Offline without
// having reported it applied has settled as far as the roll-out is
// concerned (it is not going to apply anything while silent) and fails it; one never heard from (Pending) and one that reports but
// has not applied the deployment yet keep it in progress, as their node
// managers may still bring them up — the caller's timeout bounds that.
//
// A Skipped instance (left out of a partial deployment) that does not run
// the deployment is settled without failing it: the roll-out is complete
// when every other instance applied it.
//
// Refused means the instance reports a last error naming the deployment
// ("deployment 7 refused: ...", the gateway's own words, relayed by the
// node manager) while it runs another one. An error that does not name it
// (an older refusal, a failed start) leaves the instance applying: it may
// yet apply the deployment, and its error is given as the reason if it
// never does.
func (t Thresholds) RolloutOf(target Current, current uint64, views []RolloutView, now time.Time) Rollout {
	r := Rollout{State: apitypes.RolloutInProgress, Instances: make([]InstanceRollout, 0, len(views))}
	names := namesDeployment(target.Number)
	settled := 0
	for _, v := range views {
		in := InstanceRollout{Name: v.Name, Status: t.Derive(v.Obs, target, now), Reason: v.Obs.LastError}
		ranIt := v.Obs.AppliedDeployment == target.Number && v.Obs.AppliedChecksum == target.Checksum
		switch {
		case v.Skipped != "" && !ranIt:
			// Left out on purpose: settled, and no failure.
			in.State = apitypes.InstanceSkipped
			in.Reason = v.Skipped
			r.Skipped++
			settled++
		case in.Status == Pending:
			in.State = apitypes.InstancePending
			in.Reason = "never reported by its node manager"
		case ranIt && v.Obs.Ready:
			// Applied, even if silent since: it did report the
			// deployment applied, which is what a roll-out waits for.
			in.State = apitypes.InstanceApplied
			in.Reason = ""
			r.Applied++
			settled++
		case in.Status == LostConnection || in.Status == Offline:
			in.State = apitypes.InstanceUnreachable
			in.Reason = fmt.Sprintf("%s: no heartbeat since %s", in.Status, v.Obs.LastHeartbeat.UTC().Format(time.RFC3339))
			settled++
		case !ranIt && v.Obs.LastError != "" && names.MatchString(v.Obs.LastError):
			in.State = apitypes.InstanceRefused
			settled++
		default:
			in.State = apitypes.InstanceApplying
			if in.Reason == "" {
				if ranIt {
					in.Reason = "applied, not ready yet"
				} else {
					in.Reason = fmt.Sprintf("runs deployment %d", v.Obs.AppliedDeployment)
				}
			}
		}
		r.Instances = append(r.Instances, in)
	}
	switch {
	case current > target.Number:
		r.State = apitypes.RolloutSuperseded
	case r.Applied+r.Skipped == len(views):
		r.State = apitypes.RolloutComplete
	case settled == len(views):
		r.State = apitypes.RolloutFailed
	}
	r.Index = r.index(current)
	return r
}

// namesDeployment matches an error that names deployment n, as the
// gateway words its refusals.
func namesDeployment(n uint64) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`(^|\W)deployment #?%d(\W|$)`, n))
}

// index hashes what a watcher of the roll-out sees.
func (r Rollout) index(current uint64) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00", r.State, r.Applied, r.Skipped, current)
	for _, in := range r.Instances {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", in.Name, in.State, in.Status, in.Reason)
	}
	if i := h.Sum64(); i != 0 {
		return i
	}
	return 1
}
