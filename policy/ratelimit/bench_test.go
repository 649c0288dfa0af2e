package ratelimit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// The limits are far above the load, as in a gateway that is not being
// limited: every request is counted and given its headers.
const benchLimits = `"limits": [{"requests": 1000000000, "window": "second"}, {"requests": 2000000000, "window": "hour"}]`

// benchRun runs p on requests of keys keys (client addresses), as an
// engine does: one Context per connection, Reset per request.
func benchRun(b *testing.B, p policy.Policy, keys int) {
	b.ReportAllocs()
	reqs := make([]*policytest.Request, keys)
	for i := range reqs {
		reqs[i] = &policytest.Request{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})}
	}
	now := time.Now()
	c := &policy.Context{}
	for i := range reqs { // every key seen once, and the Context's buffers grown
		c.Reset(reqs[i], now)
		p.Run(c)
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c.Reset(reqs[i%keys], now)
		if !p.Run(c) {
			b.Fatal("refused")
		}
		i++
	}
}

func BenchmarkRateLimitLocal(b *testing.B) {
	p := policytest.Build(b, kind, `{`+benchLimits+`, "key": "ip"}`, env(b, nil))
	benchRun(b, p, 1024)
}

func BenchmarkRateLimitLocalConsumer(b *testing.B) {
	consumers := policy.NewConsumers()
	who := consumers.Add("mobile-app")
	e := env(b, nil)
	p := policytest.Build(b, kind, `{`+benchLimits+`}`, e)
	b.ReportAllocs()
	req := policytest.Get("/")
	c := &policy.Context{}
	now := time.Now()
	c.Reset(req, now)
	c.Identify(who, "key")
	p.Run(c)
	for b.Loop() {
		c.Reset(req, now)
		c.Identify(who, "key")
		p.Run(c)
	}
}

// BenchmarkRateLimitLocalParallel runs every engine thread on the same
// policy, each with its Context, over many keys.
func BenchmarkRateLimitLocalParallel(b *testing.B) {
	p := policytest.Build(b, kind, `{`+benchLimits+`, "key": "ip"}`, env(b, nil))
	const keys = 1024
	reqs := make([]*policytest.Request, keys)
	for i := range reqs {
		reqs[i] = &policytest.Request{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})}
		at(p, reqs[i], time.Now())
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &policy.Context{}
		now := time.Now()
		i := 0
		for pb.Next() {
			c.Reset(reqs[i%keys], now)
			p.Run(c)
			i += 7
		}
	})
}

// BenchmarkRateLimitGroup counts as group mode does, with two peers'
// counts of every key heard, and flushes as the sync would.
func BenchmarkRateLimitGroup(b *testing.B) {
	h := newHub()
	config := `{` + benchLimits + `, "key": "ip", "mode": "group", "sync_interval": "10s"}`
	p := policytest.Build(b, kind, config, env(b, h.member("gw-0")))
	peers := []policy.Policy{
		policytest.Build(b, kind, config, env(b, h.member("gw-1"))),
		policytest.Build(b, kind, config, env(b, h.member("gw-2"))),
	}
	for _, q := range peers {
		for i := range 1024 {
			at(q, &policytest.Request{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})}, time.Now())
		}
		storeOf(q).sync.flush()
	}
	benchRun(b, p, 1024)
}
