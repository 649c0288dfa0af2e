package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// TestInstanceSeries checks that a simulated batch is one the admin node
// takes as a node manager's: two series per route, every one with
// requests, its latency buckets adding up to them.
func TestInstanceSeries(t *testing.T) {
	routes := routesOf(3, 20)
	rng := rand.New(rand.NewPCG(1, 2))
	got := instanceSeries(nil, rng, "g03", "g03-i00", routes, 10*time.Second)
	if len(got) != 40 {
		t.Fatalf("%d series, want 40", len(got))
	}
	var ok, bad uint64
	for _, s := range got {
		var inBuckets uint64
		for _, n := range s.Latency {
			inBuckets += n
		}
		if s.Requests == 0 || inBuckets != s.Requests || s.LatencySumMicros == 0 || s.Group != "g03" || s.Instance != "g03-i00" {
			t.Errorf("series %+v", s)
		}
		if s.Class == traffic.Class2xx {
			ok += s.Requests
		} else {
			bad += s.Requests
		}
	}
	// Route r: 20/(r+1) a second ±20 %, about 72 a second for 20 routes.
	if ok < 500 || ok > 900 || bad < 20 || bad > 60 {
		t.Errorf("2xx %d, 4xx %d in 10 s: want about 720 and 3 %% (at least one per route)", ok, bad)
	}
}
