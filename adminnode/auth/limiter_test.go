package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestLimiter(t *testing.T) {
	type step struct {
		op        string        // "fail", "ok" (Succeeded) or "check"
		at        time.Duration // after t0
		wantOK    bool          // for "check"
		wantRetry time.Duration // for "check"
	}
	const max, window = 3, time.Minute
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"never failed", []step{{"check", 0, true, 0}}},
		{"below the limit", []step{
			{"fail", 0, false, 0}, {"fail", time.Second, false, 0},
			{"check", 2 * time.Second, true, 0},
		}},
		{"at the limit: refused until the oldest failure leaves", []step{
			{"fail", 0, false, 0}, {"fail", 10 * time.Second, false, 0}, {"fail", 20 * time.Second, false, 0},
			{"check", 20 * time.Second, false, 40 * time.Second},
			{"check", 59 * time.Second, false, time.Second},
			{"check", time.Minute, true, 0},
		}},
		{"retry after rounds up to a whole second", []step{
			{"fail", 0, false, 0}, {"fail", 0, false, 0}, {"fail", 0, false, 0},
			{"check", 30*time.Second + time.Millisecond, false, 30 * time.Second},
			{"check", 30*time.Second - time.Millisecond, false, 31 * time.Second},
		}},
		{"retry after is at least a second", []step{
			{"fail", 0, false, 0}, {"fail", 0, false, 0}, {"fail", 0, false, 0},
			{"check", window - time.Nanosecond, false, time.Second},
		}},
		{"only the last failures count", []step{
			{"fail", 0, false, 0}, {"fail", 30 * time.Second, false, 0},
			{"fail", 40 * time.Second, false, 0}, {"fail", 50 * time.Second, false, 0},
			// Four failures; the last three started at 30 s.
			{"check", 70 * time.Second, false, 20 * time.Second},
			{"check", 90 * time.Second, true, 0},
		}},
		{"failures spread wider than the window", []step{
			{"fail", 0, false, 0}, {"fail", 40 * time.Second, false, 0},
			{"fail", 80 * time.Second, false, 0},
			{"check", 80 * time.Second, true, 0},
		}},
		{"success clears", []step{
			{"fail", 0, false, 0}, {"fail", 0, false, 0}, {"fail", 0, false, 0},
			{"ok", time.Second, false, 0},
			{"check", time.Second, true, 0},
			{"fail", 2 * time.Second, false, 0}, {"fail", 2 * time.Second, false, 0},
			{"check", 2 * time.Second, true, 0},
		}},
		{"out-of-order clocks", []step{
			{"fail", 10 * time.Second, false, 0}, {"fail", 0, false, 0}, {"fail", 5 * time.Second, false, 0},
			{"check", 10 * time.Second, false, 50 * time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(max, window)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch s.op {
				case "fail":
					l.Failed("user:alice", now)
				case "ok":
					l.Succeeded("user:alice")
				case "check":
					ok, retry := l.Allowed("user:alice", now)
					if ok != s.wantOK || retry != s.wantRetry {
						t.Fatalf("step %d: Allowed at %s = %v, %s; want %v, %s", i, s.at, ok, retry, s.wantOK, s.wantRetry)
					}
					if ok, _ := l.Allowed("user:bob", now); !ok {
						t.Fatalf("step %d: another key is refused", i)
					}
				}
			}
		})
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxKeys  int
		keys     int
		spacing  time.Duration // between failures
		wantKeys int
	}{
		// Every key fails once a second and the window is a minute, so at
		// most 60 keys are live; the rest are pruned.
		{"stale keys are pruned", 1000, 500, time.Second, 60},
		// All failures are live: the cap drops the oldest.
		{"the cap holds", 100, 500, time.Millisecond, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(3, time.Minute)
			l.maxKeys = tc.maxKeys
			for i := range tc.keys {
				l.Failed(fmt.Sprintf("user:u%d", i), t0.Add(time.Duration(i)*tc.spacing))
			}
			if len(l.keys) != tc.wantKeys || l.order.Len() != tc.wantKeys {
				t.Fatalf("%d keys, %d in order, want %d", len(l.keys), l.order.Len(), tc.wantKeys)
			}
		})
	}
}

func TestLimiterEvictsLeastRecentlyFailed(t *testing.T) {
	// An attacker spraying user names from one address must not evict
	// that address's own key: each failure moves it to the back.
	l := NewLimiter(3, time.Hour)
	l.maxKeys = 10
	now := t0
	for i := range 100 {
		now = now.Add(time.Millisecond)
		l.Failed("source:10.0.0.1", now)
		l.Failed(fmt.Sprintf("user:u%d", i), now)
	}
	if ok, _ := l.Allowed("source:10.0.0.1", now); ok {
		t.Fatal("the spraying source was evicted")
	}
	if ok, _ := l.Allowed("user:u0", now); !ok {
		t.Fatal("the least recently failed key was kept")
	}
	if len(l.keys) > 10 {
		t.Fatalf("%d keys, want at most 10", len(l.keys))
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(5, time.Minute)
	l.maxKeys = 50
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprintf("user:u%d", (g*500+i)%80)
				now := t0.Add(time.Duration(i) * time.Millisecond)
				l.Allowed(key, now)
				l.Failed(key, now)
				if i%7 == 0 {
					l.Succeeded(key)
				}
			}
		})
	}
	wg.Wait()
	if len(l.keys) > 50 || len(l.keys) != l.order.Len() {
		t.Fatalf("%d keys, %d in order", len(l.keys), l.order.Len())
	}
}

func TestNewLimiterRefusesNonPositive(t *testing.T) {
	for _, tc := range []struct {
		max    int
		window time.Duration
	}{{0, time.Minute}, {3, 0}, {-1, -time.Second}} {
		t.Run(fmt.Sprintf("%d,%s", tc.max, tc.window), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			NewLimiter(tc.max, tc.window)
		})
	}
}
