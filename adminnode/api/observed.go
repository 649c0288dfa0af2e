package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Heartbeats are soft state: a thousand node managers beating every 5 s
// would be two hundred store transactions a second, each with an fsync,
// to record values that the next beat replaces. They are kept in memory,
// where every read takes them from, and written to the store in one
// transaction at most every flushEvery (and by Flush at shutdown), so that
// statuses survive a restart with at most that much lost.
const flushEvery = 10 * time.Second

type observed struct {
	mu        sync.Mutex
	states    map[string]store.InstanceState
	dirty     map[string]bool
	lastFlush time.Time
	// flushEvery is flushEvery, or sharedFlushEvery on a store several
	// admin nodes share.
	flushEvery time.Duration
	flushing   atomic.Bool
	// drift is since when each instance has run another deployment than
	// its group's current one.
	drift map[string]drift
	// hosts is each node manager's last heartbeat (overview.go).
	hosts map[string]hostContact
}

func (s *Server) loadObserved(ctx context.Context) error {
	states, err := s.store.ListInstanceStates(ctx)
	if err != nil {
		return fmt.Errorf("load instance states: %w", err)
	}
	s.obs.states = make(map[string]store.InstanceState, len(states))
	s.obs.dirty = map[string]bool{}
	s.obs.drift = map[string]drift{}
	for _, st := range states {
		s.obs.states[st.Instance] = st
	}
	s.obs.lastFlush = s.now()
	return nil
}

// observe records an instance's state; a flush is started in the
// background when the last one is old enough.
func (s *Server) observe(sts []store.InstanceState) {
	o := &s.obs
	o.mu.Lock()
	moved := false
	for _, st := range sts {
		prev, ok := o.states[st.Instance]
		moved = moved || !ok || reportMoved(prev, st)
		o.states[st.Instance] = st
		o.dirty[st.Instance] = true
	}
	due := s.now().Sub(o.lastFlush) >= o.flushEvery
	o.mu.Unlock()
	if moved {
		s.reports.bump()
	}
	if due && o.flushing.CompareAndSwap(false, true) {
		go func() {
			defer o.flushing.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Flush(ctx); err != nil {
				s.log.Error("write instance states", "error", err)
			}
		}()
	}
}

// reportMoved says whether an instance's new state may change a
// roll-out: what it runs, whether it is ready, its last error.
func reportMoved(prev, next store.InstanceState) bool {
	return prev.AppliedDeployment != next.AppliedDeployment || prev.AppliedChecksum != next.AppliedChecksum ||
		prev.Ready != next.Ready || prev.LastError != next.LastError ||
		prev.GatewayVersion != next.GatewayVersion || prev.FeatureLevel != next.FeatureLevel ||
		!reflect.DeepEqual(prev.Settings, next.Settings)
}

// states returns a copy of every observed state.
func (s *Server) states() map[string]store.InstanceState {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return maps.Clone(s.obs.states)
}

func (s *Server) forget(name string) {
	s.obs.mu.Lock()
	delete(s.obs.states, name)
	delete(s.obs.dirty, name)
	delete(s.obs.drift, name)
	s.obs.mu.Unlock()
}

// Flush writes the observed states changed since the last flush. The
// admin node calls it at shutdown.
func (s *Server) Flush(ctx context.Context) error {
	o := &s.obs
	o.mu.Lock()
	batch := make([]store.InstanceState, 0, len(o.dirty))
	for name := range o.dirty {
		batch = append(batch, o.states[name])
	}
	o.dirty = map[string]bool{}
	o.lastFlush = s.now()
	o.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := s.store.PutInstanceStates(ctx, batch); err != nil {
		// Marked dirty again, unless newer states came meanwhile.
		o.mu.Lock()
		for _, st := range batch {
			if cur, ok := o.states[st.Instance]; ok && cur.LastHeartbeat.Equal(st.LastHeartbeat) {
				o.dirty[st.Instance] = true
			}
		}
		o.mu.Unlock()
		return fmt.Errorf("write %d instance states: %w", len(batch), err)
	}
	return nil
}

// flushForNumbering writes the heartbeats heard since the last flush
// before a deployment is numbered: the store numbers it above what the
// group's instances report running (store.NextDeploymentNumber), which
// after a restore from an older backup may be above anything it holds,
// and must see the latest reports to do so.
func (s *Server) flushForNumbering(ctx context.Context) error {
	if err := s.Flush(ctx); err != nil {
		return fmt.Errorf("number the deployment: %w", err)
	}
	return nil
}

// hostIndex is the instances, and the instances by host, rebuilt when the
// change index moves: every heartbeat and blocking query of a node manager
// asks for its host's instances, every instance list for all of them, and
// the store can only decode them all each time.
type hostIndex struct {
	mu     sync.Mutex
	index  uint64
	built  bool
	all    []store.Instance
	byHost map[string][]store.Instance
	// byName finds an instance by name, for traffic batches.
	byName map[string]store.Instance
	// addrs is each host's advertised address.
	addrs map[string]string
	// currents caches each group's current deployment, for statuses.
	currents map[string]status.Current
}

// current returns the instance lists, rebuilt if a change was made.
func (h *hostIndex) current(ctx context.Context, s *Server) ([]store.Instance, map[string][]store.Instance, error) {
	all, byHost, _, err := h.snapshot(ctx, s)
	return all, byHost, err
}

// snapshot is current with the hosts' addresses.
func (h *hostIndex) snapshot(ctx context.Context, s *Server) ([]store.Instance, map[string][]store.Instance, map[string]string, error) {
	index, _ := s.changes.current()
	return h.snapshotAt(ctx, s, index)
}

// snapshotAt is snapshot for a caller that read the change index before:
// lists read at that index or a later one serve it. Callers that queue
// while one rebuilds are served by that rebuild, even when changes came
// meanwhile: rebuilding again for each of them, one after the other, is
// a convoy that never ends while changes keep coming (a fleet of node
// managers noting their addresses on their first heartbeats), and
// rebuilding means reading every instance and host from the store.
func (h *hostIndex) snapshotAt(ctx context.Context, s *Server, index uint64) ([]store.Instance, map[string][]store.Instance, map[string]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.built || h.index < index {
		// The index is read before the store, so that a change landing
		// in between leaves the index stale and the next call rebuilds.
		all, err := s.store.ListInstances(ctx, store.InstanceFilter{})
		if err != nil {
			return nil, nil, nil, err
		}
		hosts, err := s.store.ListHosts(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		h.addrs = make(map[string]string, len(hosts))
		for _, x := range hosts {
			h.addrs[x.Name] = x.Address
		}
		h.all = all
		h.byHost = map[string][]store.Instance{}
		h.byName = make(map[string]store.Instance, len(all))
		for _, in := range all {
			h.byHost[in.Host] = append(h.byHost[in.Host], in)
			h.byName[in.Name] = in
		}
		h.index, h.built = index, true
		h.currents = map[string]status.Current{}
	}
	return h.all, h.byHost, h.addrs, nil
}

// named returns the instances by name; callers must not change it (a
// rebuild makes a new one).
func (h *hostIndex) named(ctx context.Context, s *Server) (map[string]store.Instance, error) {
	if _, _, err := h.current(ctx, s); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byName, nil
}

// instance finds an instance by name.
func (h *hostIndex) instance(ctx context.Context, s *Server, name string) (store.Instance, bool, error) {
	if _, _, err := h.current(ctx, s); err != nil {
		return store.Instance{}, false, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	in, ok := h.byName[name]
	return in, ok, nil
}

// current is the group's current deployment for status derivation,
// cached until the next change.
func (s *Server) current(ctx context.Context, group string) (status.Current, error) {
	h := &s.hosts
	if _, _, err := h.current(ctx, s); err != nil {
		return status.Current{}, err
	}
	h.mu.Lock()
	cur, ok := h.currents[group]
	h.mu.Unlock()
	if ok {
		return cur, nil
	}
	d, err := s.deps.LatestDeployment(ctx, group)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return status.Current{}, err
	default:
		cur = status.Current{Number: d.Number, Checksum: d.Checksum, Skipped: skippedOut(d.Skipped)}
	}
	h.mu.Lock()
	if h.currents != nil {
		h.currents[group] = cur
	}
	h.mu.Unlock()
	return cur, nil
}

// instances returns the instances f selects; callers must not change
// them.
func (s *Server) instances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, error) {
	all, _, err := s.hosts.current(ctx, s)
	if err != nil {
		return nil, err
	}
	out := make([]store.Instance, 0, len(all))
	for _, in := range all {
		if (f.Group == "" || in.Group == f.Group) && (f.Host == "" || in.Host == f.Host) {
			out = append(out, in)
		}
	}
	return out, nil
}

// hostInstances returns the instances of host, optionally of one group.
func (s *Server) hostInstances(ctx context.Context, host, group string) ([]store.Instance, error) {
	_, byHost, err := s.hosts.current(ctx, s)
	if err != nil {
		return nil, err
	}
	ins := byHost[host]
	if group == "" {
		return slices.Clone(ins), nil
	}
	var out []store.Instance
	for _, in := range ins {
		if in.Group == group {
			out = append(out, in)
		}
	}
	return out, nil
}
