package ratelimit

import (
	"math"
	"sync"
	"time"
)

// numShards spreads keys over locks so that requests of different keys
// rarely wait on each other.
const (
	shardBits = 6
	numShards = 1 << shardBits
)

// Tables of a shard, by what a key is.
const (
	kindNamed = iota // a consumer's name or a header's value
	kindIP           // a client address, as its 16-byte form
	numKinds
)

// store is the counters of one rate-limit identity (config.identity):
// per key, one slot per window, counting this instance's requests, plus
// what the rest of the group counted (the peers' counts in group mode,
// Redis's totals in redis mode). It outlives deployments that keep the
// same identity, through Env.Resources.
type store struct {
	windows []int64 // nanoseconds, shortest first
	// keep is how long a key may go unseen before it is forgotten: its
	// counts no longer weigh on any decision after two windows.
	keep   int64
	shards [numShards]shard
	// now is the clock of the syncing goroutine and of received counts;
	// requests use the engine's Context.Now.
	now func() time.Time

	// syncing lists the keys counted since the last flush for sync.
	syncing   bool
	sync      syncer
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// syncer shares a store's counts with the rest of the group.
type syncer interface {
	// flush sends the counts of the keys listed dirty since the last
	// flush (and takes the list).
	flush()
	close()
}

type shard struct {
	mu      sync.Mutex
	tables  [numKinds]map[string]*entry
	dirty   []*entry
	sweepAt int64
	_       [64]byte // keeps neighbouring shards' locks off one cache line
}

// entry is the counts of one key.
type entry struct {
	key   string
	kind  uint8
	shard uint8
	dirty bool
	seen  int64 // last request or message, unix nanoseconds
	slots []slot
	// peers are the ids (groupSync.peerID) of the instances whose counts
	// of this key were heard; peer p's count of slot j is
	// peerSlots[p*len(slots)+j].
	peers     []uint16
	peerSlots []peerSlot
}

// slot is a key's count in one window.
type slot struct {
	idx int64 // the window: unix time / window length
	cur int64 // counted here in window idx
	// prev is the previous window's total, without the peers' (which
	// peerSlots keep).
	prev int64
	// Redis mode: sent is the part of cur added to Redis, shared the
	// window's total Redis last answered (ours included).
	sent, shared int64
}

// total is the window's count as far as this instance knows, without
// the peers'.
func (s *slot) total() int64 { return s.cur + max(s.shared-s.sent, 0) }

// roll moves the slot to window idx; the clock going back leaves it where
// it is.
func (s *slot) roll(idx int64) {
	if idx <= s.idx {
		return
	}
	prev := int64(0)
	if s.idx == idx-1 {
		prev = s.total()
	}
	*s = slot{idx: idx, prev: prev}
}

// peerSlot is another instance's count of a key in one window.
type peerSlot struct {
	idx, cur, prev int64
}

func (p *peerSlot) merge(in peerSlot) {
	switch {
	case in.idx == p.idx:
		p.cur, p.prev = max(p.cur, in.cur), max(p.prev, in.prev)
	case in.idx == p.idx+1:
		*p = peerSlot{idx: in.idx, cur: in.cur, prev: max(in.prev, p.cur)}
	case in.idx > p.idx:
		*p = in
	}
}

func newStore(windows []time.Duration) *store {
	st := &store{now: time.Now}
	for _, w := range windows {
		st.windows = append(st.windows, int64(w))
	}
	st.keep = 2 * st.windows[len(st.windows)-1]
	for i := range st.shards {
		for k := range st.shards[i].tables {
			st.shards[i].tables[k] = map[string]*entry{}
		}
	}
	return st
}

// start runs s.flush every interval until Close.
func (st *store) start(s syncer, interval time.Duration) {
	st.syncing, st.sync, st.done = true, s, make(chan struct{})
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.flush()
			case <-st.done:
				return
			}
		}
	}()
}

// Close stops sharing the counts; the policies built on the store are no
// longer in use.
func (st *store) Close() error {
	if st.sync != nil {
		st.closeOnce.Do(func() {
			close(st.done)
			st.wg.Wait()
			st.sync.close()
		})
	}
	return nil
}

// limit is a limit of a policy, on the store's slot of its window.
type limit struct {
	requests int64
	slot     int
	text     string // requests, for X-RateLimit-Limit
}

// verdict is the decision on a request and what its headers say: the
// limit that refused it (the one that makes it wait longest), or, when
// allowed, the limit with the fewest requests left.
type verdict struct {
	allowed   bool
	limit     *limit
	remaining int64
	reset     int64 // nanoseconds until the limit's window ends
	retry     int64 // nanoseconds until a request fits again, when refused
}

// hash mixes the key eight bytes at a time, written out so that it takes
// a key as it comes, a string or bytes, without converting (and
// allocating). Shards are picked by its top bits, which depend on every
// byte.
func hash[K string | []byte](key K) uint64 {
	const m = 0x9e3779b97f4a7c15
	h := uint64(len(key)) * m
	i := 0
	for ; i+8 <= len(key); i += 8 {
		v := uint64(key[i]) | uint64(key[i+1])<<8 | uint64(key[i+2])<<16 | uint64(key[i+3])<<24 |
			uint64(key[i+4])<<32 | uint64(key[i+5])<<40 | uint64(key[i+6])<<48 | uint64(key[i+7])<<56
		h = (h ^ v) * m
		h ^= h >> 32
	}
	for ; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * m
	}
	return h
}

func shardOf(h uint64) uint8 { return uint8(h >> (64 - shardBits)) }

// take decides on a request of key at now, and counts it if every limit
// lets it through.
func take[K string | []byte](st *store, kind int, key K, now int64, limits []limit, v *verdict) {
	n := shardOf(hash(key))
	sh := &st.shards[n]
	sh.mu.Lock()
	e := sh.tables[kind][string(key)]
	if e == nil {
		e = st.insert(sh, n, kind, string(key), now)
	}
	e.seen = now
	st.decide(e, now, limits, v)
	st.markDirty(sh, e)
	sh.mu.Unlock()
}

// markDirty lists e for the next flush; sh is locked.
func (st *store) markDirty(sh *shard, e *entry) {
	if st.syncing && !e.dirty {
		e.dirty = true
		sh.dirty = append(sh.dirty, e)
	}
}

// insert adds a key seen for the first time; sh is locked. It is also
// when the shard forgets the keys gone quiet, at most once per keep.
func (st *store) insert(sh *shard, n uint8, kind int, key string, now int64) *entry {
	if now >= sh.sweepAt {
		for _, t := range sh.tables {
			for k, e := range t {
				if now-e.seen > st.keep && !e.dirty {
					delete(t, k)
				}
			}
		}
		sh.sweepAt = now + st.keep
	}
	e := &entry{key: key, kind: uint8(kind), shard: n, slots: make([]slot, len(st.windows))}
	sh.tables[kind][key] = e
	return e
}

// decide applies the limits to e at now; e's shard is locked.
//
// Each limit is a sliding window approximated from two fixed ones: the
// current window's count plus the previous window's weighted by the part
// of it that still lies within one window of now, as if its requests had
// come evenly. A request passes while that estimate is below the limit.
func (st *store) decide(e *entry, now int64, limits []limit, v *verdict) {
	for j := range e.slots {
		e.slots[j].roll(now / st.windows[j])
	}
	*v = verdict{allowed: true, remaining: math.MaxInt64}
	for i := range limits {
		l := &limits[i]
		w := st.windows[l.slot]
		idx := e.slots[l.slot].idx
		elapsed := max(now-idx*w, 0)
		cur, prev := e.totals(l.slot, idx)
		est := float64(prev)*float64(w-elapsed)/float64(w) + float64(cur)
		if est >= float64(l.requests) {
			if retry := retryAfter(l.requests, cur, prev, elapsed, w); v.allowed || retry > v.retry {
				*v = verdict{limit: l, reset: w - elapsed, retry: retry}
			}
			continue
		}
		if rem := int64(math.Ceil(float64(l.requests) - est - 1)); v.allowed && rem < v.remaining {
			v.limit, v.remaining, v.reset = l, max(rem, 0), w-elapsed
		}
	}
	if v.allowed {
		for j := range e.slots {
			e.slots[j].cur++
		}
	}
}

// totals are slot j's counts in window idx and the one before, the
// peers' included.
func (e *entry) totals(j int, idx int64) (cur, prev int64) {
	s := &e.slots[j]
	cur, prev = s.total(), s.prev
	n := len(e.slots)
	for p := range e.peers {
		ps := &e.peerSlots[p*n+j]
		switch ps.idx {
		case idx:
			cur, prev = cur+ps.cur, prev+ps.prev
		case idx - 1:
			prev += ps.cur
		}
	}
	return cur, prev
}

// retryAfter is how long until a request fits again under a limit of n
// per window w that refuses one now, if nothing else is counted: while
// the current count is below n, until the previous window's weight has
// fallen enough; otherwise into the next window, where the current count
// becomes the previous one and its weight falls in turn.
func retryAfter(n, cur, prev, elapsed, w int64) int64 {
	left := float64(w - elapsed)
	if cur < n {
		// prev*(left-t)/w + cur < n; refused, so prev > 0.
		return int64(math.Ceil(left - float64(n-cur)*float64(w)/float64(prev)))
	}
	// cur*(w-t)/w < n, t into the next window.
	return int64(math.Ceil(left + float64(w)*(1-float64(n)/float64(cur))))
}

// heard merges another instance's counts of a key; counts has one per
// slot.
func (st *store) heard(kind int, key []byte, peer uint16, counts []peerSlot) {
	now := st.now().UnixNano()
	n := shardOf(hash(key))
	sh := &st.shards[n]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.tables[kind][string(key)]
	if e == nil {
		e = st.insert(sh, n, kind, string(key), now)
	}
	e.seen = now
	p := 0
	for p < len(e.peers) && e.peers[p] != peer {
		p++
	}
	if p == len(e.peers) {
		e.peers = append(e.peers, peer)
		e.peerSlots = append(e.peerSlots, make([]peerSlot, len(e.slots))...)
	}
	for j, c := range counts {
		e.peerSlots[p*len(e.slots)+j].merge(c)
	}
}

// takeDirty calls fn for each key counted since the last call, in shard
// order, with the shard locked, and then after is called unlocked: what a
// flush reads under the lock it sends after.
func (st *store) takeDirty(fn func(e *entry), after func()) {
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		for _, e := range sh.dirty {
			e.dirty = false
			fn(e)
		}
		clear(sh.dirty)
		sh.dirty = sh.dirty[:0]
		sh.mu.Unlock()
		after()
	}
}
