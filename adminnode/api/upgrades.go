package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Defaults of the rolling upgrades.
const (
	DefaultRolloutSoak = 5 * time.Second
	// DefaultRolloutBatchTimeout covers the node manager's own wait for a
	// new process (60 s) and a heartbeat or two.
	DefaultRolloutBatchTimeout = 90 * time.Second
	upgradeTick                = 500 * time.Millisecond
)

// rolloutRunner drives the groups' rolling upgrades.
type rolloutRunner struct {
	kick         chan struct{}
	soak         time.Duration
	batchTimeout time.Duration
}

func (s *Server) kickRollouts() {
	select {
	case s.rollouts.kick <- struct{}{}:
	default:
	}
}

// Lease says whether this admin node does the domain's background work.
type Lease interface{ Held() bool }

// RunRollouts moves the groups' rolling upgrades forward until ctx ends,
// while lease is held (one admin node of a shared store drives them; each
// step is one transaction, so another taking over goes on from the
// stored state):
//
//   - rolling: the next batch (MaxUnavailable instances not done yet) is
//     told to run the new release; the node managers replace each
//     process without downtime. A batch passes once every instance
//     reports the new release ready, and still the same processes after
//     the soak. A batch whose instance reports its replacement failed
//     (the node manager's new process exited or was not ready: the old
//     one serves on), or that is not through within the batch timeout,
//     rolls the group back to the release it came from — or, asked to
//     (OnFailurePause), pauses the rollout where it is.
//   - rolling-back: every instance runs the old release again; rolled
//     back once all report it ready and none pending.
//   - paused: nothing moves until an operator resumes the rollout or
//     rolls it back (putGroupGateway).
//
// Every end is audited (user "system").
func (s *Server) RunRollouts(ctx context.Context, lease Lease) {
	t := time.NewTicker(upgradeTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.rollouts.kick:
		}
		if !lease.Held() {
			continue
		}
		groups, err := s.store.ListGroups(ctx)
		if err != nil {
			s.log.Warn("rolling upgrades: list groups", "error", err)
			continue
		}
		for _, g := range groups {
			r := g.Gateway.Rollout
			if r == nil || (r.State != store.RolloutRunning && r.State != store.RolloutRollingBack) {
				continue
			}
			if err := s.stepRollout(ctx, g); err != nil && ctx.Err() == nil {
				s.log.Warn("rolling upgrade step", "group", g.Name, "error", err)
			}
		}
	}
}

// stepRollout moves one group's rollout forward by what the heartbeats
// show.
func (s *Server) stepRollout(ctx context.Context, g store.Group) error {
	ins, err := s.store.ListInstances(ctx, store.InstanceFilter{Group: g.Name})
	if err != nil {
		return err
	}
	names := make([]string, len(ins))
	for i, in := range ins {
		names[i] = in.Name
	}
	states := s.states()
	now := s.now().UTC()
	var ended, failed string
	// moved says the instances' desired release changed: the node
	// managers' blocking queries must wake.
	var moved, paused bool
	_, err = s.store.UpdateGroupGateway(ctx, g.Name, func(gw *store.GroupGateway) error {
		r := gw.Rollout
		ended, failed, moved, paused = "", "", false, false
		if r == nil {
			return nil
		}
		event := func(instance, format string, args ...any) {
			r.Events = append(r.Events, store.RolloutEvent{At: now, Instance: instance, What: fmt.Sprintf(format, args...)})
		}
		// fail ends the batch in progress: the group rolls back to the
		// release it came from, or the rollout pauses where it is.
		fail := func(why string) {
			failed = why
			r.Error, r.Batch = why, nil
			r.SoakSince, r.SoakPIDs, r.SoakTotals = time.Time{}, nil, nil
			if r.OnFailure == store.OnFailurePause {
				r.State, paused = store.RolloutPaused, true
				event("", "failed: %s; paused with %d of %d instances on %q", why, len(r.Done), len(names), r.To)
				return
			}
			event("", "failed: %s; rolling back to %q", why, r.From)
			r.State, r.BatchAt = store.RolloutRollingBack, now
			gw.Version = r.From
		}
		switch r.State {
		case store.RolloutRollingBack:
			for _, n := range names {
				// Pending: its node manager is still on an older desired
				// state (say, a try of the new release) and may replace
				// the process yet.
				if st := states[n]; st.Release != r.From || !st.Ready || st.Pending || !st.LastHeartbeat.After(r.BatchAt) {
					return nil
				}
			}
			r.State, r.EndedAt, r.Batch = store.RolloutRolledBack, now, nil
			event("", "rolled back: every instance runs %q again", r.From)
			ended = r.State
		case store.RolloutRunning:
			if len(r.Batch) == 0 {
				var todo []string
				for _, n := range names {
					if !slices.Contains(r.Done, n) {
						todo = append(todo, n)
					}
				}
				if len(todo) == 0 {
					r.State, r.EndedAt = store.RolloutDone, now
					event("", "done: every instance runs %q", r.To)
					ended = r.State
					return nil
				}
				r.Batch = todo[:min(len(todo), max(r.MaxUnavailable, 1))]
				moved = true
				r.BatchAt, r.SoakSince, r.SoakPIDs, r.BatchErrors = now, time.Time{}, nil, nil
				for _, n := range r.Batch {
					if e := states[n].LastError; e != "" {
						if r.BatchErrors == nil {
							r.BatchErrors = map[string]string{}
						}
						r.BatchErrors[n] = e
					}
					event(n, "replacing the process with release %q", r.To)
				}
				return nil
			}
			if why := s.batchFailed(r, states, now); why != "" {
				fail(why)
				return nil
			}
			ready := true
			for _, n := range r.Batch {
				st := states[n]
				if st.Release != r.To || !st.Ready || st.Pending || st.Process != "running" || !st.LastHeartbeat.After(r.BatchAt) {
					ready = false
				}
			}
			switch {
			case !ready:
				r.SoakSince, r.SoakPIDs = time.Time{}, nil
			case r.SoakSince.IsZero():
				r.SoakSince, r.SoakPIDs, r.SoakTotals = now, map[string]int{}, map[string]store.SoakTotal{}
				for _, n := range r.Batch {
					r.SoakPIDs[n] = states[n].PID
					event(n, "ready on %q (pid %d): soaking %s", r.To, states[n].PID, s.rollouts.soak)
				}
				for _, n := range names {
					st := states[n]
					r.SoakTotals[n] = store.SoakTotal{Boot: st.Boot, Requests: st.Requests, Errors: st.Errors}
				}
			case now.Sub(r.SoakSince) >= s.rollouts.soak:
				for _, n := range r.Batch {
					if states[n].PID != r.SoakPIDs[n] {
						fail(fmt.Sprintf("instance %s restarted during its soak (pid %d, was %d)", n, states[n].PID, r.SoakPIDs[n]))
						return nil
					}
				}
				if why, summary := errorRates(r, names, states); why != "" {
					fail(why)
					return nil
				} else if summary != "" {
					event("", "%s", summary)
				}
				for _, n := range r.Batch {
					event(n, "upgraded to %q", r.To)
				}
				r.Done = append(r.Done, r.Batch...)
				r.Batch, r.SoakSince, r.SoakPIDs, r.SoakTotals = nil, time.Time{}, nil, nil
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if moved || failed != "" {
		s.changes.bump()
	}
	if ended != "" || failed != "" {
		action, result, detail := "group.gateway.rollout", store.AuditOK, ended
		switch {
		case failed != "" && paused:
			action, result, detail = "group.gateway.pause", store.AuditError, failed
		case failed != "":
			action, result, detail = "group.gateway.rollback", store.AuditError, failed
		}
		if _, err := s.store.AppendAudit(ctx, store.AuditEntry{Time: now, User: "system", Action: action,
			Target: "group/" + g.Name, Group: g.Name, Result: result, Detail: detail}); err != nil {
			return fmt.Errorf("audit the rollout of group %s: %w", g.Name, err)
		}
		s.log.Info("rolling upgrade", "group", g.Name, "state", ended, "failed", failed)
	}
	return nil
}

// batchFailed says why the batch in progress failed, or "".
func (s *Server) batchFailed(r *store.ReleaseRollout, states map[string]store.InstanceState, now time.Time) string {
	for _, n := range r.Batch {
		st := states[n]
		if st.LastHeartbeat.After(r.BatchAt) && st.Release != r.To && strings.Contains(st.LastError, "serves on") &&
			st.LastError != r.BatchErrors[n] {
			return fmt.Sprintf("instance %s: %s", n, st.LastError)
		}
	}
	if now.Sub(r.BatchAt) > s.rollouts.batchTimeout {
		return fmt.Sprintf("instances %s not ready on %q within %s", strings.Join(r.Batch, ", "), r.To, s.rollouts.batchTimeout)
	}
	return ""
}

// Error-rate comparison of a soak: the new processes fail it when they
// answered enough requests (minSoakRequests) and their 5xx rate is both
// over twice the old processes' and more than maxExtraErrorRate above it.
const (
	minSoakRequests   = 20
	maxExtraErrorRate = 0.05
)

// errorRates compares the 5xx rate of the batch's new processes over the
// soak with the rate of the instances still on the old release over the
// same time (with none left, with 0). It returns why the batch fails, or
// else what it compared ("" when there was too little traffic to say).
func errorRates(r *store.ReleaseRollout, names []string, states map[string]store.InstanceState) (string, string) {
	delta := func(n string) (req, errs uint64, ok bool) {
		start, st := r.SoakTotals[n], states[n]
		if st.Boot == "" || st.Boot != start.Boot || st.Requests < start.Requests || st.Errors < start.Errors {
			return 0, 0, false
		}
		return st.Requests - start.Requests, st.Errors - start.Errors, true
	}
	var newReq, newErr, oldReq, oldErr uint64
	for _, n := range names {
		req, errs, ok := delta(n)
		switch {
		case !ok:
		case slices.Contains(r.Batch, n):
			newReq, newErr = newReq+req, newErr+errs
		case !slices.Contains(r.Done, n):
			oldReq, oldErr = oldReq+req, oldErr+errs
		}
	}
	if newReq < minSoakRequests {
		return "", ""
	}
	rate := func(e, n uint64) float64 {
		if n == 0 {
			return 0
		}
		return float64(e) / float64(n)
	}
	newRate, oldRate := rate(newErr, newReq), rate(oldErr, oldReq)
	summary := fmt.Sprintf("5xx over the soak: %.1f%% of %d requests on %q, %.1f%% of %d on %q", 100*newRate, newReq, r.To, 100*oldRate, oldReq, r.From)
	if newRate > 2*oldRate && newRate > oldRate+maxExtraErrorRate {
		return summary + ": the new release errs more", summary
	}
	return "", summary
}
