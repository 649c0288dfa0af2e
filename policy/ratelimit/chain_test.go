package ratelimit

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// identify is an authentication policy for tests: X-Consumer names the
// consumer.
type identify struct{ consumers *policy.Consumers }

func (i identify) Run(c *policy.Context) bool {
	if who := i.consumers.Named(string(c.RequestHeader("X-Consumer"))); who != nil {
		c.Identify(who, "key")
	}
	return true
}

var identifyKind = &policy.Kind{Name: "identify", Phase: policy.PhaseAccess, Priority: 800}

// A consumer's own rate-limit replaces the route's once the consumer is
// identified.
func TestConsumerOverride(t *testing.T) {
	consumers := policy.NewConsumers()
	gold := consumers.Add("gold")
	consumers.Add("plain")
	e := env(t, nil)
	e.Consumers = consumers
	gold.SetChain(policy.NewChain([]policy.Step{
		{Kind: kind, Policy: policytest.Build(t, kind, `{"limits": [{"requests": 5, "window": "minute"}]}`, e)},
	}))
	route := policy.NewChain([]policy.Step{
		{Kind: identifyKind, Policy: identify{consumers}},
		{Kind: kind, Policy: policytest.Build(t, kind, `{"limits": [{"requests": 2, "window": "minute"}]}`, e)},
	})
	for _, tt := range []struct {
		consumer string
		want     int
	}{{"gold", 5}, {"plain", 2}, {"", 2}} {
		allowed := 0
		for range 10 {
			c := &policy.Context{}
			c.Reset(from("192.0.2.1", "X-Consumer", tt.consumer), t0)
			if route.Run(c) {
				allowed++
			}
		}
		if allowed != tt.want {
			t.Errorf("consumer %q: %d allowed, want %d", tt.consumer, allowed, tt.want)
		}
	}
}

// Keys unseen for two of the longest windows are forgotten when a new key
// comes to their shard.
func TestIdleKeysForgotten(t *testing.T) {
	p := policytest.Build(t, kind, `{"limits": [{"requests": 5, "window": "second"}, {"requests": 50, "window": "10s"}], "key": "header", "header_name": "K"}`, env(t, nil))
	st := storeOf(p)
	for i := range 1000 {
		at(p, from("192.0.2.1", "K", string(rune('a'+i%26))+string(rune(i))), t0)
	}
	count := func() int {
		n := 0
		for i := range st.shards {
			n += len(st.shards[i].tables[kindNamed])
		}
		return n
	}
	if n := count(); n != 1000 {
		t.Fatalf("%d keys, want 1000", n)
	}
	later := t0.Add(20*time.Second + time.Nanosecond)
	for i := range numShards * 8 {
		at(p, from("192.0.2.1", "K", "late"+string(rune(i))), later)
	}
	if n := count(); n != numShards*8 {
		t.Errorf("%d keys after the sweep, want the %d recent ones", n, numShards*8)
	}
}
