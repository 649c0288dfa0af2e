package gossip

import (
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Joining seeds: a seed that is not an alive member is joined, and joined
// again with backoff until it is one. While this member is alone (the
// group's first instances start together) retries are quick. Once it is
// in a cluster they are slow: a new seed is joined at once, but a seed
// that was a member and is not any more (dead, or a cluster split by a
// partition, which memberlist does not mend by itself once the halves
// forget each other) only after joinLazy. Sooner would do harm: memberlist
// heals a member wrongly declared dead by itself, and every member pushing
// its whole state to it at once would overload it into being suspected
// again.
//
// A seed is recognised as a member by its address, which fails when the
// members advertise another address than the one their seeds name (bound
// to every interface, each advertises a private IP of its host, while the
// admin node names the host by the address it sees). Such a seed, once
// joined, counts as a member until this member loses a peer: without that,
// every member joined every seed again every joinLazy, a full state
// exchange each, a tenth of an idle gateway's CPU in a group of ten
// (bench/README.md).
const (
	joinBackoffMin   = 250 * time.Millisecond
	joinBackoffAlone = 5 * time.Second
	joinLazy         = 30 * time.Second
	// joinRecheck is how often seeds are compared with the members while
	// nothing else happens.
	joinRecheck = 5 * time.Second
)

// jitter spreads d over [0.8d, 1.2d) so that members do not act in step.
func jitter(d time.Duration) time.Duration {
	return d*4/5 + rand.N(d*2/5+1)
}

type seedList struct {
	mu    sync.Mutex
	addrs []string
	state map[string]*seedState
	kick  chan struct{}
}

type seedState struct {
	retry   time.Time     // last attempt + backoff
	lazy    time.Time     // not before this while not alone
	backoff time.Duration // of the retries while alone
	failing bool
	// joined is set by a successful join, with the count of peers lost
	// before it (Member.losses): the seed stands for a member until
	// another peer is lost.
	joined       bool
	joinedLosses uint64
}

// member says whether the seed at a is in the cluster: it is this member
// or advertises a, or it was joined and no peer has been lost since.
func (st *seedState) member(a, self string, members map[string]bool, losses uint64) bool {
	return a == self || members[a] || (st.joined && st.joinedLosses == losses)
}

// dueAt is when the seed is to be joined next.
func (st *seedState) dueAt(alone bool) time.Time {
	if !alone && st.lazy.After(st.retry) {
		return st.lazy
	}
	return st.retry
}

// SetSeeds replaces the seeds (the gossip addresses of the group's other
// instances) and joins, in the background, those that are not members
// yet. An address that is not "IP:port" is dropped with a warning.
func (m *Member) SetSeeds(seeds []string) {
	var addrs []string
	for _, s := range seeds {
		a, err := normalizeSeed(s)
		if err != nil {
			m.logger.Warn("ignoring seed", "seed", s, "error", err)
			continue
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	sl := &m.seeds
	sl.mu.Lock()
	old := sl.state
	sl.addrs, sl.state = addrs, map[string]*seedState{}
	for _, a := range addrs {
		if st, ok := old[a]; ok {
			sl.state[a] = st
		} else {
			sl.state[a] = &seedState{}
		}
	}
	sl.mu.Unlock()
	m.kickSeeds()
}

// kickSeeds makes the join loop look at the seeds now.
func (m *Member) kickSeeds() {
	select {
	case m.seeds.kick <- struct{}{}:
	default:
	}
}

// oneLine flattens memberlist's multi-line errors (go-multierror) for
// the log.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	return strings.TrimPrefix(s, "1 error occurred: * ")
}

func normalizeSeed(s string) (string, error) {
	host, port, err := splitAddr(s, DefaultPort)
	if err != nil {
		return "", err
	}
	if host == "" || port == 0 {
		return "", &net.AddrError{Err: "a seed needs an IP and a port", Addr: s}
	}
	return net.JoinHostPort(net.ParseIP(host).String(), strconv.Itoa(port)), nil
}

func (m *Member) joinLoop() {
	defer m.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-m.seeds.kick:
		case <-timer.C:
		}
		if m.left.Load() || m.down.Load() {
			return
		}
		wait := m.joinDue()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// joinDue joins the seeds that are due and returns how long to wait
// before the next look.
func (m *Member) joinDue() time.Duration {
	self := m.Addr()
	members := map[string]bool{}
	peers := m.alivePeers()
	alone := len(peers) == 0
	for _, n := range peers {
		members[n.Address()] = true
	}

	now := time.Now()
	losses := m.losses.Load()
	var due []string
	sl := &m.seeds
	sl.mu.Lock()
	for _, a := range sl.addrs {
		st := sl.state[a]
		if st.member(a, self, members, losses) {
			st.backoff, st.retry, st.lazy = 0, time.Time{}, now.Add(jitter(m.joinLazy))
			continue
		}
		if !now.Before(st.dueAt(alone)) {
			due = append(due, a)
		}
	}
	sl.mu.Unlock()

	for _, a := range due {
		if m.left.Load() || m.down.Load() {
			break
		}
		lost := m.losses.Load()
		_, err := m.ml.Join([]string{a})
		if m.cfg.joined != nil {
			m.cfg.joined(a, err)
		}
		now := time.Now()
		sl.mu.Lock()
		st, ok := sl.state[a]
		if !ok { // SetSeeds dropped it meanwhile
			sl.mu.Unlock()
			continue
		}
		st.backoff = min(max(st.backoff*2, joinBackoffMin), joinBackoffAlone)
		st.retry = now.Add(jitter(st.backoff))
		// Joined, it is normally a member from now on; if it is not (it
		// advertises another address than the seed), or if the join
		// failed, try again lazily while in a cluster.
		st.lazy = now.Add(jitter(m.joinLazy))
		wasFailing := st.failing
		st.failing = err != nil
		st.joined, st.joinedLosses = err == nil, lost
		sl.mu.Unlock()
		switch {
		case err != nil && !wasFailing:
			m.logger.Warn("cannot join seed; retrying", "seed", a, "error", oneLine(err))
		case err != nil:
			m.logger.Debug("cannot join seed", "seed", a, "error", oneLine(err))
		default:
			m.logger.Info("joined seed", "seed", a, "members", m.ml.NumMembers())
		}
	}

	wait := joinRecheck
	sl.mu.Lock()
	now = time.Now()
	for _, a := range sl.addrs {
		if st := sl.state[a]; !st.member(a, self, members, losses) {
			wait = min(wait, max(st.dueAt(alone).Sub(now), 0))
		}
	}
	sl.mu.Unlock()
	return wait
}
