package upstream

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

// clock is a time source that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// events records what the OnChange hook is told.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) hook(upstream, address string, healthy bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, fmt.Sprintf("%s/%s=%t", upstream, address, healthy))
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

func passiveTarget(t *testing.T, pc *deploy.PassiveHealthCheck) (*Target, *clock, *events) {
	t.Helper()
	clk, ev := newClock(), &events{}
	e := testEnv()
	e.now = clk.now
	fn := ev.hook
	e.hook.Store(&fn)
	target := testTarget(e, "a:80", 1)
	target.core.setPassive(pc)
	return target, clk, ev
}

// outcome is a request's result as the proxy reports it: "x" a connection
// error, otherwise a status.
func release(target *Target, outcome string) {
	target.Acquire()
	if outcome == "x" {
		target.Release(false, 0)
		return
	}
	var status int
	fmt.Sscan(outcome, &status)
	target.Release(true, status)
}

func TestPassiveEjection(t *testing.T) {
	pc := &deploy.PassiveHealthCheck{ConsecutiveFailures: 3, Statuses: []int{502, 503}}
	tests := []struct {
		name     string
		outcomes string
		ejected  bool
	}{
		{"connection errors", "x x x", true},
		{"below the threshold", "x x", false},
		{"listed statuses", "503 502 503", true},
		{"mixed failures", "x 503 x", true},
		{"unlisted statuses are successes", "500 500 500 404", false},
		{"a success resets the count", "x x 200 x x", false},
		{"an unlisted status resets the count", "x x 500 x x", false},
		{"count restarts after a success", "x x 200 x x x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, _, _ := passiveTarget(t, pc)
			for _, o := range strings.Fields(tt.outcomes) {
				release(target, o)
			}
			s := target.state()
			if s.Ejected != tt.ejected || target.Healthy() == tt.ejected || s.Healthy == tt.ejected {
				t.Errorf("after %s: ejected %t, Healthy() %t, state %+v; want ejected %t",
					tt.outcomes, s.Ejected, target.Healthy(), s, tt.ejected)
			}
			if s.Active != 0 {
				t.Errorf("%d requests in flight after all were released", s.Active)
			}
		})
	}
}

func TestPassiveNotConfigured(t *testing.T) {
	target, _, _ := passiveTarget(t, nil)
	for range 100 {
		release(target, "x")
	}
	if !target.Healthy() {
		t.Error("ejected without a passive check")
	}
}

func TestPassiveRecovery(t *testing.T) {
	target, clk, ev := passiveTarget(t, &deploy.PassiveHealthCheck{ConsecutiveFailures: 2, EjectFor: deploy.Duration(10 * time.Second)})
	release(target, "x")
	release(target, "x")
	if target.Healthy() {
		t.Fatal("not ejected after 2 failures")
	}

	// Requests sent before the ejection end during it; they neither count
	// nor extend it.
	clk.advance(5 * time.Second)
	for range 10 {
		release(target, "x")
	}
	clk.advance(5*time.Second - time.Nanosecond)
	if target.Healthy() {
		t.Fatal("back before eject_for")
	}
	clk.advance(time.Nanosecond)
	if !target.Healthy() {
		t.Fatal("still ejected after eject_for")
	}
	if s := target.state(); s.Ejected || s.ConsecutiveFailures != 0 {
		t.Fatalf("state after the ejection = %+v, want not ejected and no failures", s)
	}

	// The count restarted: one failure does not eject again, two do.
	release(target, "x")
	if !target.Healthy() {
		t.Fatal("one failure after the ejection ejected the target again")
	}
	release(target, "x")
	if target.Healthy() {
		t.Fatal("not ejected again after 2 more failures")
	}

	want := []string{"u/a:80=false", "u/a:80=true", "u/a:80=false"}
	if got := ev.list(); !slices.Equal(got, want) {
		t.Errorf("hook saw %v, want %v", got, want)
	}
}

func TestPassiveDefaultEjectFor(t *testing.T) {
	target, clk, _ := passiveTarget(t, &deploy.PassiveHealthCheck{ConsecutiveFailures: 1})
	release(target, "x")
	clk.advance(defaultEjectFor - time.Second)
	if target.Healthy() {
		t.Fatal("back before the default eject_for")
	}
	clk.advance(time.Second)
	if !target.Healthy() {
		t.Fatal("still ejected after the default eject_for")
	}
}

func TestPassiveRemovedEndsEjection(t *testing.T) {
	target, _, ev := passiveTarget(t, &deploy.PassiveHealthCheck{ConsecutiveFailures: 1})
	release(target, "x")
	target.core.setPassive(nil)
	if !target.Healthy() {
		t.Error("still ejected after the passive check was removed")
	}
	want := []string{"u/a:80=false", "u/a:80=true"}
	if got := ev.list(); !slices.Equal(got, want) {
		t.Errorf("hook saw %v, want %v", got, want)
	}
}

func TestEjectedTargetsArePassedOver(t *testing.T) {
	for _, balancer := range balancers {
		t.Run(balancer, func(t *testing.T) {
			clk := newClock()
			e := testEnv()
			e.now = clk.now
			targets := testTargets(e, 1, 1)
			for _, target := range targets {
				target.core.setPassive(&deploy.PassiveHealthCheck{ConsecutiveFailures: 1, EjectFor: deploy.Duration(time.Second)})
			}
			u := testUpstream(balancer, targets)
			release(targets[0], "x")
			for _, key := range hashKeys(100) {
				if got := u.Pick(key, nil); got != targets[1] {
					t.Fatalf("Pick = %s, want the target that is not ejected", label(got))
				}
			}
			release(targets[1], "503")
			release(targets[1], "x")
			if got := u.Pick(nil, nil); got != nil {
				t.Fatalf("Pick = %s with every target ejected, want nil", label(got))
			}
			clk.advance(time.Second)
			if got := u.Pick(nil, nil); got == nil {
				t.Fatal("Pick = nil after the ejections ended")
			}
		})
	}
}

func TestActiveAndPassiveCombine(t *testing.T) {
	target, clk, ev := passiveTarget(t, &deploy.PassiveHealthCheck{ConsecutiveFailures: 1, EjectFor: deploy.Duration(time.Second)})
	release(target, "x")
	target.core.down.Store(true)
	target.core.report(false)
	clk.advance(time.Second)
	if target.Healthy() {
		t.Fatal("healthy while the active check says down")
	}
	if s := target.state(); s.Ejected || s.Healthy {
		t.Fatalf("state = %+v, want down but no longer ejected", s)
	}
	target.core.down.Store(false)
	target.core.report(false)
	// The hook sees one change to down and one back, not each cause.
	want := []string{"u/a:80=false", "u/a:80=true"}
	if got := ev.list(); !slices.Equal(got, want) {
		t.Errorf("hook saw %v, want %v", got, want)
	}
}
