package waitfor

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of stopping
// the test, so that the helpers' failures can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestCond(t *testing.T) {
	tests := []struct {
		name     string
		okAfter  int32 // polls before the condition holds; -1 never
		timeout  time.Duration
		wantFail string
	}{
		{"at once", 0, time.Second, ""},
		{"after some polls", 3, time.Second, ""},
		{"never", -1, 50 * time.Millisecond, "timed out after 50ms waiting for the thing; last state: poll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var polls atomic.Int32
			r := &recorder{TB: t}
			began := time.Now()
			Cond(r, tt.timeout, "the thing", func() (bool, string) {
				n := polls.Add(1)
				return tt.okAfter >= 0 && n > tt.okAfter, fmt.Sprintf("poll %d", n)
			})
			if tt.wantFail == "" && r.failed != "" {
				t.Fatalf("failed: %s", r.failed)
			}
			if tt.wantFail != "" {
				if !strings.HasPrefix(r.failed, tt.wantFail) {
					t.Fatalf("failure %q, want it to start with %q", r.failed, tt.wantFail)
				}
				if time.Since(began) < tt.timeout {
					t.Errorf("gave up after %s, before the timeout %s", time.Since(began), tt.timeout)
				}
			}
		})
	}
}

func TestHolds(t *testing.T) {
	t.Run("holds over the window", func(t *testing.T) {
		r := &recorder{TB: t}
		began := time.Now()
		var polls atomic.Int32
		Holds(r, 60*time.Millisecond, "calm", func() (bool, string) { polls.Add(1); return true, "" })
		if r.failed != "" {
			t.Fatal(r.failed)
		}
		if d := time.Since(began); d < 60*time.Millisecond {
			t.Errorf("returned after %s, before the end of the window", d)
		}
		if polls.Load() < 3 {
			t.Errorf("%d polls over the window, want several", polls.Load())
		}
	})
	t.Run("broken in the window", func(t *testing.T) {
		r := &recorder{TB: t}
		began := time.Now()
		var polls atomic.Int32
		Holds(r, time.Second, "calm", func() (bool, string) {
			n := polls.Add(1)
			return n < 3, fmt.Sprintf("poll %d", n)
		})
		if r.failed != "calm did not hold for 1s: poll 3" {
			t.Errorf("failure %q", r.failed)
		}
		if d := time.Since(began); d > 500*time.Millisecond {
			t.Errorf("noticed the break after %s", d)
		}
	})
}
