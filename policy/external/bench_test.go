package external

import (
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// benchConfig has a timeout long enough that a busy machine slows the
// calls down rather than failing them.
const benchConfig = `{"plugin": "signature", "config": {"secret": "s3cret"}, "timeout": "1s"}`

// BenchmarkExternalCheck is the latency an external policy adds to a
// request: one Run against the example plugin's process, signature
// checked, headers edited. p50 and p99 are of the individual calls.
func BenchmarkExternalCheck(b *testing.B) {
	env, _, _ := gatewayEnv(b)
	p := policytest.Build(b, Kind, benchConfig, env)
	req := policytest.Get("/orders/7", "X-Signature", signature("s3cret", "GET", "/orders/7"),
		"Accept", "application/json", "User-Agent", "bench/1.0")
	c := &policy.Context{}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.Reset(req, time.Time{})
		start := time.Now()
		ok := p.Run(c)
		lat = append(lat, time.Since(start))
		if !ok {
			b.Fatalf("refused: %v", verdict(c))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkExternalCheckParallel is the same with concurrent requests:
// the plugin's throughput as one process serves them all.
func BenchmarkExternalCheckParallel(b *testing.B) {
	env, _, _ := gatewayEnv(b)
	p := policytest.Build(b, Kind, benchConfig, env)
	req := policytest.Get("/orders/7", "X-Signature", signature("s3cret", "GET", "/orders/7"),
		"Accept", "application/json", "User-Agent", "bench/1.0")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := &policy.Context{}
		for pb.Next() {
			c.Reset(req, time.Time{})
			if !p.Run(c) {
				b.Errorf("refused: %v", verdict(c))
				return
			}
		}
	})
}
