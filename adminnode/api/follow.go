package api

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// sharedFlushEvery is how often heartbeats are written to a store shared
// by several admin nodes: well under the node managers' 5 s heartbeat, so
// that what one admin node heard is seen through the others within one
// interval. Still one transaction per admin node per period, however many
// node managers beat.
const sharedFlushEvery = 2 * time.Second

// Follow keeps this admin node in step with the others writing its store
// until ctx ends: their changes wake its blocking queries, and the
// heartbeats they wrote join the ones it heard. On a store of one admin
// node (bbolt) it only waits for ctx. The admin node runs it once, under
// its name among the others (the overview's admin nodes).
func (s *Server) Follow(ctx context.Context, node string) {
	c, ok := s.store.(store.Coordinator)
	if !ok || !c.Shared() {
		<-ctx.Done()
		return
	}
	for ch := range c.Watch(ctx, node) {
		switch ch.Kind {
		case store.ChangeInstanceStates:
			s.mergeObserved(ctx)
		case store.ChangeResync:
			s.mergeObserved(ctx)
			s.changes.bump()
			s.reports.bump()
		default:
			// Any other write may concern node managers, as an
			// operator's change through this admin node does.
			s.changes.bump()
		}
	}
}

// mergeObserved takes the stored instance states newer than the ones in
// memory: those another admin node heard.
func (s *Server) mergeObserved(ctx context.Context) {
	stored, err := s.store.ListInstanceStates(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read the instance states other admin nodes wrote", "error", err)
		}
		return
	}
	o := &s.obs
	moved := false
	o.mu.Lock()
	for _, st := range stored {
		cur, ok := o.states[st.Instance]
		if ok && !st.LastHeartbeat.After(cur.LastHeartbeat) {
			continue
		}
		moved = moved || !ok || reportMoved(cur, st)
		o.states[st.Instance] = st
	}
	o.mu.Unlock()
	if moved {
		s.reports.bump()
	}
}

// coordination is where this admin node stands among the others of its
// domain, for the overview.
func (s *Server) coordination(ctx context.Context) (nodes []string, holder string, err error) {
	c, ok := s.store.(store.Coordinator)
	if !ok {
		return nil, "", nil
	}
	if nodes, err = c.AdminNodes(ctx); err != nil {
		return nil, "", fmt.Errorf("admin nodes: %w", err)
	}
	if holder, err = c.LeaseHolder(ctx); err != nil {
		return nil, "", fmt.Errorf("lease holder: %w", err)
	}
	return nodes, holder, nil
}

// storeUnreachable says whether err is the store being out of reach rather
// than a failure of the request.
func (s *Server) storeUnreachable(err error) bool {
	r, ok := s.store.(store.Reachability)
	return ok && r.Unreachable(err)
}
