package upstream

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

func baseUpstreams() []deploy.Upstream {
	return []deploy.Upstream{
		{
			Name:     "orders",
			Targets:  []deploy.Target{{Address: "10.0.0.1:80"}, {Address: "10.0.0.2:80", Weight: 2}},
			Timeouts: deploy.Timeouts{Read: deploy.Duration(5 * time.Second)},
			Passive:  &deploy.PassiveHealthCheck{ConsecutiveFailures: 1},
		},
		{
			Name:    "users",
			Targets: []deploy.Target{{Address: "10.0.0.1:80"}},
		},
	}
}

func TestRegistryReuse(t *testing.T) {
	tests := []struct {
		name   string
		change func(ups []deploy.Upstream) []deploy.Upstream
		// What becomes of orders' first target.
		samePointer, samePool bool
	}{
		{"unchanged", func(ups []deploy.Upstream) []deploy.Upstream { return ups }, true, true},
		{"other upstream removed", func(ups []deploy.Upstream) []deploy.Upstream { return ups[:1] }, true, true},
		{"other target removed", func(ups []deploy.Upstream) []deploy.Upstream {
			ups[0].Targets = ups[0].Targets[:1]
			return ups
		}, true, true},
		{"targets reordered", func(ups []deploy.Upstream) []deploy.Upstream {
			slices.Reverse(ups[0].Targets)
			return ups
		}, true, true},
		{"balancer changed", func(ups []deploy.Upstream) []deploy.Upstream {
			ups[0].Balancer = deploy.BalancerLeastConnections
			return ups
		}, true, true},
		{"default timeout written out", func(ups []deploy.Upstream) []deploy.Upstream {
			ups[0].Timeouts.Connect = deploy.Duration(defaultConnectTimeout)
			return ups
		}, true, true},
		{"weight changed", func(ups []deploy.Upstream) []deploy.Upstream {
			ups[0].Targets[0].Weight = 3
			return ups
		}, false, true},
		{"timeout changed", func(ups []deploy.Upstream) []deploy.Upstream {
			ups[0].Timeouts.Read = deploy.Duration(10 * time.Second)
			return ups
		}, false, false},
		{"upstream renamed", func(ups []deploy.Upstream) []deploy.Upstream {
			ups[0].Name = "orders-v2"
			return ups
		}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, _ := newTestRegistry(t)
			first, err := r.Update(baseUpstreams())
			if err != nil {
				t.Fatal(err)
			}
			old := first["orders"].Targets[0]
			old.Acquire()
			old.Release(false, 0) // ejects: consecutive_failures is 1
			old.Acquire()         // and leaves a request in flight
			defer old.Release(true, 200)

			ups := tt.change(baseUpstreams())
			second, err := r.Update(ups)
			if err != nil {
				t.Fatal(err)
			}
			var now *Target
			for _, u := range second {
				for _, target := range u.Targets {
					if u.Config.Name == ups[0].Name && target.Address == old.Address {
						now = target
					}
				}
			}
			if now == nil {
				t.Fatal("target missing from the new configuration")
			}
			if (now == old) != tt.samePointer {
				t.Errorf("same *Target: %t, want %t", now == old, tt.samePointer)
			}
			if (now.Client == old.Client) != tt.samePool {
				t.Errorf("same pool: %t, want %t", now.Client == old.Client, tt.samePool)
			}
			// The health and the requests in flight go with the pool.
			s := now.state()
			if kept := s.Ejected && s.Active == 1; kept != tt.samePool {
				t.Errorf("state kept: %t (%+v), want %t", kept, s, tt.samePool)
			}
			if now.Weight != max(ups[0].Targets[slices.IndexFunc(ups[0].Targets, func(t deploy.Target) bool {
				return t.Address == old.Address
			})].Weight, 1) {
				t.Errorf("weight %d does not follow the configuration", now.Weight)
			}
		})
	}
}

func TestRegistryResult(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	ups, err := r.Update(baseUpstreams())
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 2 || ups["orders"] == nil || ups["users"] == nil {
		t.Fatalf("Update returned %v, want orders and users", ups)
	}
	orders := ups["orders"]
	if orders.Name != "orders" || len(orders.Targets) != 2 {
		t.Fatalf("orders = %+v", orders)
	}
	// Same address, different upstreams: separate pools and health.
	if ups["users"].Targets[0].Client == orders.Targets[0].Client {
		t.Error("two upstreams share a target's pool")
	}
	c := orders.Targets[0].Client
	// DisablePathNormalizing stays off: the upstream must read the path the
	// router matched, not "/public/../admin".
	if c.Addr != "10.0.0.1:80" || c.ReadTimeout != 5*time.Second || c.WriteTimeout != defaultWriteTimeout ||
		c.MaxConns != maxConnsPerTarget || c.MaxIdleConnDuration != maxIdleConnDuration ||
		!c.StreamResponseBody || c.DisablePathNormalizing || !c.NoDefaultUserAgentHeader {
		t.Errorf("pool settings: Addr %s, timeouts %s/%s, MaxConns %d, MaxIdleConnDuration %s, StreamResponseBody %t, DisablePathNormalizing %t, NoDefaultUserAgentHeader %t",
			c.Addr, c.ReadTimeout, c.WriteTimeout, c.MaxConns, c.MaxIdleConnDuration, c.StreamResponseBody, c.DisablePathNormalizing, c.NoDefaultUserAgentHeader)
	}
	want := []TargetState{
		{Address: "10.0.0.1:80", Weight: 1, Healthy: true},
		{Address: "10.0.0.2:80", Weight: 2, Healthy: true},
	}
	if got := orders.States(); !slices.Equal(got, want) {
		t.Errorf("States = %+v, want %+v", got, want)
	}
}

func TestRegistryRemovesTargets(t *testing.T) {
	b := newBackend(t)
	r, ev, _ := newTestRegistry(t)
	r.grace = 10 * time.Millisecond
	cfg := []deploy.Upstream{{
		Name:    "api",
		Targets: []deploy.Target{{Address: b.address()}, {Address: "127.0.0.1:1"}},
		Passive: &deploy.PassiveHealthCheck{ConsecutiveFailures: 1},
	}}
	ups, err := r.Update(cfg)
	if err != nil {
		t.Fatal(err)
	}
	removed := ups["api"].Targets[0]
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + b.address() + "/")
	if err := removed.Client.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	resp.CloseBodyStream()
	if n := removed.Client.ConnsCount(); n != 1 {
		t.Fatalf("%d pooled connections after a request, want 1", n)
	}

	cfg[0].Targets = cfg[0].Targets[1:]
	next, err := r.Update(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := next["api"].Targets; len(got) != 1 || got[0].Address != "127.0.0.1:1" {
		t.Fatalf("targets after removal: %v", got)
	}
	waitfor.True(t, 5*time.Second, "the removed target's idle connections are closed", func() bool { return removed.Client.ConnsCount() == 0 })

	// A request of the old configuration that ends badly reports nothing:
	// the target is no longer anyone's to judge.
	removed.Acquire()
	removed.Release(false, 0)
	if !removed.Healthy() {
		t.Error("a retired target was ejected")
	}
	want := []string{"api/" + b.address() + "=true", "api/127.0.0.1:1=true"}
	if got := ev.list(); !slices.Equal(got, want) {
		t.Errorf("hook saw %v, want %v", got, want)
	}

	// Re-adding it later gives a fresh target.
	cfg[0].Targets = append(cfg[0].Targets, deploy.Target{Address: b.address()})
	again, err := r.Update(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again["api"].Targets[1] == removed {
		t.Error("a retired target came back")
	}
}

func TestRegistryInvalidUpdateChangesNothing(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	first, err := r.Update(baseUpstreams())
	if err != nil {
		t.Fatal(err)
	}
	bad := baseUpstreams()
	bad[1].Targets = append(bad[1].Targets, deploy.Target{Address: "no-port"})
	bad[0].Targets = nil
	_, err = r.Update(bad)
	var errs deploy.Errors
	if !errors.As(err, &errs) || len(errs) != 2 || errs[0].Path != "upstreams[0].targets" || errs[1].Path != "upstreams[1].targets[1].address" {
		t.Fatalf("Update error = %v, want the two field errors", err)
	}
	again, err := r.Update(baseUpstreams())
	if err != nil {
		t.Fatal(err)
	}
	if again["orders"].Targets[0] != first["orders"].Targets[0] {
		t.Error("a failed Update dropped the targets of the configuration before it")
	}
}

func TestRegistryPassiveFollowsConfiguration(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	clk := newClock()
	r.env.now = clk.now
	ups := baseUpstreams()
	first, err := r.Update(ups)
	if err != nil {
		t.Fatal(err)
	}
	target := first["orders"].Targets[0]

	ups[0].Passive = &deploy.PassiveHealthCheck{ConsecutiveFailures: 2, EjectFor: deploy.Duration(time.Minute)}
	if _, err := r.Update(ups); err != nil {
		t.Fatal(err)
	}
	release(target, "x")
	if !target.Healthy() {
		t.Fatal("ejected after one failure with consecutive_failures 2")
	}
	release(target, "x")
	clk.advance(59 * time.Second)
	if target.Healthy() {
		t.Fatal("eject_for of the new configuration not applied")
	}

	ups[0].Passive = nil
	if _, err := r.Update(ups); err != nil {
		t.Fatal(err)
	}
	if !target.Healthy() {
		t.Error("still ejected after the passive check was removed")
	}
}

// TestRegistryConcurrentUse is for the race detector: the request path,
// health changes and reloads all at once.
func TestRegistryConcurrentUse(t *testing.T) {
	b := newBackend(t)
	r, _, _ := newTestRegistry(t)
	r.OnChange(func(string, string, bool) {})
	cfg := func(balancer string) []deploy.Upstream {
		u := deploy.Upstream{
			Name:        "api",
			Balancer:    balancer,
			Targets:     []deploy.Target{{Address: b.address()}, {Address: "127.0.0.1:1", Weight: 2}},
			HealthCheck: fastCheck(),
			Passive:     &deploy.PassiveHealthCheck{ConsecutiveFailures: 2, EjectFor: deploy.Duration(time.Millisecond)},
		}
		if balancer == deploy.BalancerConsistentHash {
			u.HashOn = &deploy.HashOn{Source: deploy.HashOnClientIP}
		}
		return []deploy.Upstream{u}
	}
	ups, err := r.Update(cfg(""))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		current = ups["api"]
		wg      sync.WaitGroup
		stop    = make(chan struct{})
	)
	for i := range 4 {
		wg.Go(func() {
			key := []byte{127, 0, 0, byte(i)}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				u := current
				mu.Unlock()
				if t := u.Pick(key, nil); t != nil {
					t.Acquire()
					t.Release(n%3 != 0, 200)
				}
				u.States()
			}
		})
	}
	for i := range 30 {
		next, err := r.Update(cfg(balancers[i%len(balancers)]))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		current = next["api"]
		mu.Unlock()
		if i%10 == 0 {
			b.answer.Store(int32(i / 10 % 2))
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
}

func TestUpdateResolvesTargetNames(t *testing.T) {
	r := NewRegistry(hclog.NewNullLogger())
	defer r.Close()
	ups, err := r.Update([]deploy.Upstream{{Name: "api", Targets: []deploy.Target{
		{Address: "localhost:8081"}, {Address: "10.1.2.3:80"}, {Address: "no-such-host.invalid:80"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:8081", "10.1.2.3:80", "no-such-host.invalid:80"}
	for i, tg := range ups["api"].Targets {
		if tg.DialAddr != want[i] {
			t.Errorf("target %s: DialAddr %q, want %q", tg.Address, tg.DialAddr, want[i])
		}
	}
}
