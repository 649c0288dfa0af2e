package upstream

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// balancer chooses a healthy target other than skip, or nil.
type balancer interface {
	pick(key []byte, skip *Target) *Target
}

const (
	// maxSequence bounds the round-robin sequence, whose length is the sum
	// of the weights: building it costs that length times the number of
	// targets.
	maxSequence = 1 << 16
	// pointsPerWeight virtual nodes per unit of weight spread a target's
	// share of the ring evenly enough (within about 10%) at 1.
	pointsPerWeight = 100
	// maxRingPoints bounds the ring to a few megabytes. Heavier rings are
	// scaled down, which makes their points depend on the total weight:
	// a change to one target of such a ring moves more keys than its own.
	maxRingPoints = 1 << 18
)

// roundRobin is nginx's smooth weighted round-robin, precomputed: weights
// 5, 1, 1 give a a b a c a a rather than a a a a a b c, so that a heavy
// target's requests are spread out in time.
type roundRobin struct {
	seq  []*Target
	next atomic.Uint64
}

func newRoundRobin(targets []*Target) *roundRobin {
	weights := make([]int, len(targets))
	g := 0
	for i, t := range targets {
		weights[i] = t.Weight
		g = gcd(g, t.Weight)
	}
	// Dividing by the gcd keeps the sequence as short as the ratios allow.
	for i := range weights {
		weights[i] /= g
	}
	weights = scale(weights, maxSequence)
	total := 0
	for _, w := range weights {
		total += w
	}
	seq := make([]*Target, total)
	current := make([]int, len(targets))
	for s := range seq {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		seq[s] = targets[best]
	}
	rr := &roundRobin{seq: seq}
	// Gateways reloading the same configuration together would otherwise
	// all send their first requests to the same target.
	rr.next.Store(rand.Uint64N(uint64(total)))
	return rr
}

func (rr *roundRobin) pick(_ []byte, skip *Target) *Target {
	n := uint64(len(rr.seq))
	start := rr.next.Add(1)
	for i := range n {
		if t := rr.seq[(start+i)%n]; t != skip && t.Healthy() {
			return t
		}
	}
	return nil
}

// leastConnections chooses the healthy target with the fewest requests in
// flight for its weight. The scan starts one target further each time, so
// that equally loaded targets (all idle, typically) take turns instead of
// the first one taking everything.
type leastConnections struct {
	targets []*Target
	next    atomic.Uint64
}

func (lc *leastConnections) pick(_ []byte, skip *Target) *Target {
	n := uint64(len(lc.targets))
	start := lc.next.Add(1)
	var (
		best       *Target
		bestActive int64
	)
	for i := range n {
		t := lc.targets[(start+i)%n]
		if t == skip || !t.Healthy() {
			continue
		}
		// active/weight < bestActive/bestWeight, without dividing.
		a := t.core.active.Load()
		if best == nil || a*int64(best.Weight) < bestActive*int64(t.Weight) {
			best, bestActive = t, a
		}
	}
	return best
}

// consistentHash maps keys to targets on a ring of virtual nodes placed by
// hashing the targets' addresses, so that adding or removing a target only
// moves the keys of its own arcs. Requests without a key are balanced
// round-robin.
type consistentHash struct {
	ring     []ringPoint
	fallback *roundRobin
}

type ringPoint struct {
	hash   uint64
	target *Target
}

func newConsistentHash(targets []*Target) *consistentHash {
	// Unlike round-robin, weights are not divided by their gcd: a change
	// of another target's weight would change every target's points and
	// move keys between targets that did not change.
	points := make([]int, len(targets))
	for i, t := range targets {
		points[i] = t.Weight * pointsPerWeight
	}
	points = scale(points, maxRingPoints)
	total := 0
	for _, p := range points {
		total += p
	}
	ring := make([]ringPoint, 0, total)
	for i, t := range targets {
		base := fnv1a(fnvOffset, t.Address)
		for v := range points[i] {
			ring = append(ring, ringPoint{hash: mix64(base + uint64(v+1)*golden), target: t})
		}
	}
	// Addresses break ties so that every gateway builds the same ring.
	slices.SortFunc(ring, func(a, b ringPoint) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.target.Address, b.target.Address))
	})
	return &consistentHash{ring: ring, fallback: newRoundRobin(targets)}
}

func (ch *consistentHash) pick(key []byte, skip *Target) *Target {
	if len(key) == 0 {
		return ch.fallback.pick(nil, skip)
	}
	h := mix64(fnv1a(fnvOffset, key))
	n := len(ch.ring)
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ch.ring[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	// Walking on keeps the key's next choice stable while its target is
	// down, and spreads the keys of a down target over the others.
	for i := range n {
		if t := ch.ring[(lo+i)%n].target; t != skip && t.Healthy() {
			return t
		}
	}
	return nil
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	golden    = 0x9e3779b97f4a7c15
)

// fnv1a is FNV-1a 64, written here because hash/fnv allocates through its
// interface.
func fnv1a[T string | []byte](h uint64, s T) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix64 is the splitmix64 finaliser. FNV-1a of similar strings ("10.0.0.1:80",
// "10.0.0.2:80") differ in few bits; mixing spreads them over the ring.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// scale shrinks weights proportionally so that they sum to about limit at
// most, keeping every target at least 1.
func scale(weights []int, limit int) []int {
	total := 0
	for _, w := range weights {
		total += w
	}
	if total <= limit {
		return weights
	}
	for i, w := range weights {
		weights[i] = max(1, w*limit/total)
	}
	return weights
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
