package upstream

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/hashicorp/go-hclog"
)

func testEnv() *env {
	return &env{logger: hclog.NewNullLogger(), now: time.Now}
}

// testTargets returns targets named a, b, c… (address "a:80") with the
// given weights.
func testTargets(e *env, weights ...int) []*Target {
	ts := make([]*Target, len(weights))
	for i, w := range weights {
		ts[i] = testTarget(e, string(rune('a'+i))+":80", w)
	}
	return ts
}

func testTarget(e *env, address string, weight int) *Target {
	c := newCore(e, "u", address, resolveTimeouts(deploy.Timeouts{}))
	return &Target{Address: address, Weight: weight, Client: c.client, core: c}
}

func testUpstream(balancer string, targets []*Target) *Upstream {
	return newUpstream(deploy.Upstream{Name: "u", Balancer: balancer}, targets)
}

func label(t *Target) string {
	if t == nil {
		return "nil"
	}
	return strings.TrimSuffix(t.Address, ":80")
}

func counts(u *Upstream, n int, key []byte) map[string]int {
	got := make(map[string]int)
	for range n {
		got[label(u.Pick(key, nil))]++
	}
	return got
}

func TestRoundRobinDistribution(t *testing.T) {
	tests := []struct {
		weights []int
		picks   int
		want    map[string]int
	}{
		{[]int{1, 2, 3}, 6000, map[string]int{"a": 1000, "b": 2000, "c": 3000}},
		{[]int{1, 1, 1}, 3000, map[string]int{"a": 1000, "b": 1000, "c": 1000}},
		{[]int{5, 1, 1}, 700, map[string]int{"a": 500, "b": 100, "c": 100}},
		{[]int{200, 400}, 600, map[string]int{"a": 200, "b": 400}},
		{[]int{7}, 10, map[string]int{"a": 10}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			u := testUpstream(deploy.BalancerRoundRobin, testTargets(testEnv(), tt.weights...))
			if got := counts(u, tt.picks, nil); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("picks = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoundRobinSequence(t *testing.T) {
	tests := []struct {
		weights []int
		want    string
	}{
		// nginx's own example of smooth weighted round-robin.
		{[]int{5, 1, 1}, "aabacaa"},
		{[]int{1, 2, 3}, "cbacbc"},
		// The gcd is divided out: the sequence is as short as the ratios.
		{[]int{4, 2}, "aba"},
		{[]int{1, 1, 1}, "abc"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			rr := newRoundRobin(testTargets(testEnv(), tt.weights...))
			var got strings.Builder
			for _, target := range rr.seq {
				got.WriteString(label(target))
			}
			if got.String() != tt.want {
				t.Errorf("sequence = %s, want %s", got.String(), tt.want)
			}
		})
	}
}

func TestRoundRobinLargeWeightsAreScaled(t *testing.T) {
	weights := make([]int, 100)
	for i := range weights {
		weights[i] = 1000 - i%2 // gcd 1, sum 99950
	}
	rr := newRoundRobin(testTargets(testEnv(), weights...))
	if n := len(rr.seq); n > maxSequence {
		t.Fatalf("sequence has %d entries, more than %d", n, maxSequence)
	}
	per := make(map[*Target]int)
	for _, target := range rr.seq {
		per[target]++
	}
	for target, n := range per {
		if want := len(rr.seq) / len(weights); n < want-1 || n > want+1 {
			t.Errorf("%s appears %d times, want about %d", target.Address, n, want)
		}
	}
}

func TestScale(t *testing.T) {
	tests := []struct {
		weights []int
		limit   int
		want    []int
	}{
		{[]int{1, 2, 3}, 6, []int{1, 2, 3}},
		{[]int{100, 200, 300}, 60, []int{10, 20, 30}},
		// Every target keeps at least one slot.
		{[]int{1, 1000}, 100, []int{1, 99}},
	}
	for _, tt := range tests {
		if got := scale(append([]int(nil), tt.weights...), tt.limit); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("scale(%v, %d) = %v, want %v", tt.weights, tt.limit, got, tt.want)
		}
	}
}

func TestLeastConnections(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		active  []int
		want    string
	}{
		{"prefers the idle target", []int{1, 1, 1}, []int{2, 0, 1}, "b"},
		{"prefers the least busy", []int{1, 1, 1}, []int{3, 2, 4}, "b"},
		{"counts per weight", []int{3, 1}, []int{2, 1}, "a"},
		{"weight does not beat idle", []int{10, 1}, []int{1, 0}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targets := testTargets(testEnv(), tt.weights...)
			for i, n := range tt.active {
				for range n {
					targets[i].Acquire()
				}
			}
			u := testUpstream(deploy.BalancerLeastConnections, targets)
			for range 10 {
				if got := label(u.Pick(nil, nil)); got != tt.want {
					t.Fatalf("Pick = %s, want %s", got, tt.want)
				}
			}
		})
	}
}

func TestLeastConnectionsSharesTies(t *testing.T) {
	u := testUpstream(deploy.BalancerLeastConnections, testTargets(testEnv(), 1, 1, 1))
	got := counts(u, 300, nil)
	want := map[string]int{"a": 100, "b": 100, "c": 100}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("idle targets picked %v, want %v", got, want)
	}
}

func TestLeastConnectionsFollowsReleases(t *testing.T) {
	u := testUpstream(deploy.BalancerLeastConnections, testTargets(testEnv(), 1, 1))
	// Requests that never end pile up on neither target.
	for range 100 {
		u.Pick(nil, nil).Acquire()
	}
	for _, s := range u.States() {
		if s.Active != 50 {
			t.Errorf("%s has %d requests in flight, want 50", s.Address, s.Active)
		}
	}
}

func hashKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("user-" + strconv.Itoa(i))
	}
	return keys
}

func TestConsistentHashSameKeySameTarget(t *testing.T) {
	u := testUpstream(deploy.BalancerConsistentHash, testTargets(testEnv(), 1, 1, 1, 1))
	// A second upstream built from equal targets must agree: every
	// gateway of a group builds its own ring.
	v := testUpstream(deploy.BalancerConsistentHash, testTargets(testEnv(), 1, 1, 1, 1))
	for _, key := range hashKeys(1000) {
		first := label(u.Pick(key, nil))
		for range 3 {
			if got := label(u.Pick(key, nil)); got != first {
				t.Fatalf("key %s went to %s, then %s", key, first, got)
			}
		}
		if other := label(v.Pick(key, nil)); other != first {
			t.Fatalf("key %s goes to %s on one ring and %s on an equal one", key, first, other)
		}
	}
}

func TestConsistentHashSpread(t *testing.T) {
	tests := []struct {
		weights []int
		share   map[string]float64
	}{
		{[]int{1, 1, 1, 1}, map[string]float64{"a": .25, "b": .25, "c": .25, "d": .25}},
		{[]int{1, 3}, map[string]float64{"a": .25, "b": .75}},
	}
	keys := hashKeys(20000)
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			u := testUpstream(deploy.BalancerConsistentHash, testTargets(testEnv(), tt.weights...))
			got := make(map[string]int)
			for _, key := range keys {
				got[label(u.Pick(key, nil))]++
			}
			for n, share := range tt.share {
				if f := float64(got[n]) / float64(len(keys)); f < share*0.8 || f > share*1.2 {
					t.Errorf("%s has %.3f of the keys, want %.3f±20%%", n, f, share)
				}
			}
		})
	}
}

func TestConsistentHashChangesMoveFewKeys(t *testing.T) {
	e := testEnv()
	keys := hashKeys(20000)
	for _, n := range []int{2, 5, 10} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			weights := make([]int, n+1)
			for i := range weights {
				weights[i] = 1
			}
			all := testTargets(e, weights...)
			before := testUpstream(deploy.BalancerConsistentHash, all[:n])
			after := testUpstream(deploy.BalancerConsistentHash, all)
			added := all[n]
			moved := 0
			for _, key := range keys {
				was, is := before.Pick(key, nil), after.Pick(key, nil)
				if was == is {
					continue
				}
				moved++
				if is != added {
					t.Fatalf("key %s moved from %s to %s, not to the added target", key, was.Address, is.Address)
				}
			}
			limit := 1/float64(n+1) + 0.05
			if f := float64(moved) / float64(len(keys)); f > limit {
				t.Errorf("adding a target to %d moved %.3f of the keys, want at most %.3f", n, f, limit)
			}
		})
	}
}

func TestConsistentHashWithoutKeyIsRoundRobin(t *testing.T) {
	u := testUpstream(deploy.BalancerConsistentHash, testTargets(testEnv(), 1, 2))
	for _, key := range [][]byte{nil, {}} {
		want := map[string]int{"a": 100, "b": 200}
		if got := counts(u, 300, key); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("key %q: picks = %v, want %v", key, got, want)
		}
	}
}

func TestConsistentHashWalksPastDownTarget(t *testing.T) {
	targets := testTargets(testEnv(), 1, 1, 1)
	u := testUpstream(deploy.BalancerConsistentHash, targets)
	keys := hashKeys(3000)
	before := make([]*Target, len(keys))
	for i, key := range keys {
		before[i] = u.Pick(key, nil)
	}
	targets[0].core.down.Store(true)
	for i, key := range keys {
		got := u.Pick(key, nil)
		switch {
		case got == targets[0]:
			t.Fatalf("key %s went to the down target", key)
		case before[i] != targets[0] && got != before[i]:
			t.Fatalf("key %s moved from %s to %s though its target is up", key, before[i].Address, got.Address)
		}
	}
}

var balancers = []string{deploy.BalancerRoundRobin, deploy.BalancerLeastConnections, deploy.BalancerConsistentHash}

func TestPickHealth(t *testing.T) {
	tests := []struct {
		name string
		down string // targets marked down by active checks
		skip string
		want string // the targets Pick may return, "nil" for none
	}{
		{name: "all up", want: "abc"},
		{name: "down target skipped", down: "b", want: "ac"},
		{name: "one left", down: "ab", want: "c"},
		{name: "all down", down: "abc", want: "nil"},
		{name: "skip honoured", skip: "a", want: "bc"},
		{name: "skip and down", down: "b", skip: "a", want: "c"},
		{name: "skip the only healthy", down: "bc", skip: "a", want: "nil"},
	}
	for _, balancer := range balancers {
		for _, tt := range tests {
			t.Run(balancer+"/"+tt.name, func(t *testing.T) {
				targets := testTargets(testEnv(), 1, 2, 3)
				byName := make(map[string]*Target)
				for _, target := range targets {
					byName[label(target)] = target
				}
				for _, n := range tt.down {
					byName[string(n)].core.down.Store(true)
				}
				u := testUpstream(balancer, targets)
				seen := make(map[string]bool)
				for i, key := range hashKeys(600) {
					if i%2 == 0 {
						key = nil
					}
					got := label(u.Pick(key, byName[tt.skip]))
					if !strings.Contains(tt.want, got) {
						t.Fatalf("Pick = %s, want one of %s", got, tt.want)
					}
					seen[got] = true
				}
				if len(seen) != len(tt.want) && tt.want != "nil" {
					t.Errorf("picked %v over 600 picks, want every one of %s", seen, tt.want)
				}
			})
		}
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, balancer := range balancers {
		u := testUpstream(balancer, testTargets(testEnv(), 1, 2, 3, 4))
		u.Targets[1].core.down.Store(true)
		key := []byte("user-42")
		if n := testing.AllocsPerRun(1000, func() { u.Pick(key, u.Targets[0]) }); n != 0 {
			t.Errorf("%s: Pick allocates %.1f times", balancer, n)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, balancer := range balancers {
		u := testUpstream(balancer, testTargets(testEnv(), 1, 2, 3, 1, 2, 3, 1, 2, 3, 1))
		key := []byte("session-3f2a9c1e")
		b.Run(balancer, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u.Pick(key, nil)
			}
		})
		b.Run(balancer+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u.Pick(key, nil)
				}
			})
		})
	}
}
