package traffic

import (
	"math"
	"testing"
	"time"
)

func TestClassOf(t *testing.T) {
	for code, want := range map[int]string{0: ClassNone, 101: Class1xx, 200: Class2xx, 304: Class3xx, 429: Class4xx, 503: Class5xx, 999: ClassNone} {
		if got := ClassOf(code); got != want {
			t.Errorf("ClassOf(%d) = %s, want %s", code, got, want)
		}
	}
}

func counts(reqs uint64, bucket int) Counts {
	var c Counts
	c.Requests = reqs
	c.Latency[bucket] = reqs
	return c
}

func TestDelta(t *testing.T) {
	a := Key{Service: "s", Route: "r", Class: Class2xx}
	b := Key{Service: "s", Route: "r", Class: Class5xx}
	prev := &Snapshot{Boot: "1", Series: []Series{{a, counts(10, 2)}, {b, counts(1, 3)}}}
	cur := &Snapshot{Boot: "1", Series: []Series{{a, counts(15, 2)}, {b, counts(1, 3)}}}
	got, reset := Delta(prev, cur)
	if reset || len(got) != 1 || got[0].Key != a || got[0].Requests != 5 || got[0].Latency[2] != 5 {
		t.Fatalf("same boot: %+v reset %v", got, reset)
	}
	// A restarted gateway counts from zero: everything it has is new.
	restarted := &Snapshot{Boot: "2", Series: []Series{{a, counts(3, 2)}}}
	got, reset = Delta(cur, restarted)
	if !reset || len(got) != 1 || got[0].Requests != 3 {
		t.Fatalf("new boot: %+v reset %v", got, reset)
	}
	// First reading: all of it.
	if got, _ = Delta(nil, cur); len(got) != 2 {
		t.Fatalf("first reading: %+v", got)
	}
}

func TestQuantileFromMergedBuckets(t *testing.T) {
	var c Counts
	// 100 requests: 50 at ≤0.5 ms (bucket 0), 50 in (5 ms, 10 ms] (bucket 4).
	c.Latency[0], c.Latency[4] = 50, 50
	if got := c.Quantile(0.5); math.Abs(got-0.0005) > 1e-9 {
		t.Errorf("p50 = %v, want 0.0005", got)
	}
	if got := c.Quantile(0.99); got <= 0.005 || got > 0.01 {
		t.Errorf("p99 = %v, want within (0.005, 0.01]", got)
	}
	var empty Counts
	if !math.IsNaN(empty.Quantile(0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
	if BucketOf(3*time.Millisecond) != 3 || BucketOf(time.Hour) != NumBuckets-1 {
		t.Errorf("BucketOf: %d %d", BucketOf(3*time.Millisecond), BucketOf(time.Hour))
	}
}
