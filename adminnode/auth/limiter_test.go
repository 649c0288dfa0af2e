package auth

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testLimits are small enough to walk through by hand.
func testLimits() Limits {
	return Limits{
		FreeFailures: 3, FirstDelay: time.Second, MaxDelay: 8 * time.Second, PairMemory: time.Minute,
		SourceFailures: 8, SourceWindow: time.Minute,
		UserFailures: 10, UserWindow: time.Minute,
		MaxPairs: 1000, MaxSources: 1000, MaxUsers: 1000,
	}
}

func newTestLimiter(t *testing.T, lim Limits) *Limiter {
	t.Helper()
	l, err := NewLimiter(lim)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// step is one call on a Limiter; at is after t0.
type step struct {
	op           string // "fail", "ok" (Succeeded) or "check"
	user, source string
	at           time.Duration
	wantOK       bool          // for "check"
	wantRetry    time.Duration // for "check"
}

func fail(user, source string, at time.Duration) step {
	return step{"fail", user, source, at, false, 0}
}
func ok(user, source string) step { return step{op: "ok", user: user, source: source} }
func allowed(user, source string, at time.Duration) step {
	return step{"check", user, source, at, true, 0}
}
func refused(user, source string, at, retry time.Duration) step {
	return step{"check", user, source, at, false, retry}
}

// spread is n failures of user from sources s0 … s(n-1) at at.
func spread(user string, n int, at time.Duration) []step {
	var out []step
	for i := range n {
		out = append(out, fail(user, fmt.Sprintf("10.0.1.%d", i), at))
	}
	return out
}

func TestLimiter(t *testing.T) {
	const a, b = "10.0.0.1", "10.0.0.2"
	s := time.Second
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"never failed", []step{allowed("admin", a, 0)}},
		{"free failures", []step{
			fail("admin", a, 0), fail("admin", a, 0),
			allowed("admin", a, 0),
		}},
		{"delays grow from the first to the cap", []step{
			fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0),
			refused("admin", a, 0, s), allowed("admin", a, s),
			fail("admin", a, s), refused("admin", a, s, 2*s), allowed("admin", a, 3*s),
			fail("admin", a, 3*s), refused("admin", a, 3*s, 4*s), allowed("admin", a, 7*s),
			fail("admin", a, 7*s), refused("admin", a, 7*s, 8*s), allowed("admin", a, 15*s),
			fail("admin", a, 15*s), refused("admin", a, 15*s, 8*s),
		}},
		{"retry after rounds up to a whole second", []step{
			fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0),
			refused("admin", a, time.Millisecond, 2*s),
			refused("admin", a, s+time.Millisecond, s),
			refused("admin", a, 2*s-time.Nanosecond, s),
		}},
		{"an attacker at one address does not delay the user at another", []step{
			fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0),
			refused("admin", a, 0, 4*s),
			allowed("admin", b, 0),
			allowed("alice", a, 0),
		}},
		{"a success clears the pair", []step{
			fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0),
			fail("admin", b, 0), fail("admin", b, 0), fail("admin", b, 0),
			ok("admin", a),
			allowed("admin", a, 0),
			fail("admin", a, 0), fail("admin", a, 0), allowed("admin", a, 0),
			refused("admin", b, 0, s),
		}},
		{"a pair is forgotten after its memory", []step{
			fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0), fail("admin", a, 0),
			fail("admin", a, 10*s), refused("admin", a, 10*s, 4*s),
			// A failure elsewhere prunes; a minute after its last failure
			// the pair starts again with its free failures.
			fail("bob", b, 70*s),
			fail("admin", a, 70*s), fail("admin", a, 70*s), allowed("admin", a, 70*s),
		}},
		{"the per-source ceiling covers every user", []step{
			fail("u1", a, 0), fail("u2", a, s), fail("u3", a, 2*s), fail("u4", a, 3*s),
			fail("u5", a, 4*s), fail("u6", a, 5*s), fail("u7", a, 6*s), fail("u8", a, 7*s),
			refused("u9", a, 7*s, 53*s),
			refused("admin", a, 30*s, 30*s),
			allowed("admin", b, 7*s),
			// The oldest failure leaves the window: 7 of 8 remain.
			allowed("u9", a, 60*s),
		}},
		{"a success does not clear the source", []step{
			fail("u1", a, 0), fail("u2", a, 0), fail("u3", a, 0), fail("u4", a, 0),
			fail("u5", a, 0), fail("u6", a, 0), fail("u7", a, 0), fail("u8", a, 0),
			ok("u1", a),
			refused("u1", a, 0, 60*s),
		}},
		{"the per-user ceiling takes the free failures of failing sources", append(spread("admin", 10, 0),
			// Each of those sources failed once: now it waits the cap.
			refused("admin", "10.0.1.0", 0, 8*s),
			refused("admin", "10.0.1.9", 5*s, 3*s),
			allowed("admin", "10.0.1.0", 8*s),
			// A source without failures for the user, and other users,
			// are not touched.
			allowed("admin", b, 10*s),
			allowed("alice", "10.0.1.0", 0),
			// The ceiling is over when the failures leave the window.
			fail("admin", "10.0.1.0", 10*s),
			refused("admin", "10.0.1.0", 10*s, 8*s),
			allowed("admin", "10.0.1.1", 60*s),
		)},
		{"below the per-user ceiling nothing changes", append(spread("admin", 9, 0),
			allowed("admin", "10.0.1.0", 0),
		)},
		{"an IPv6 source is counted per /64", []step{
			fail("admin", "2001:db8::1", 0), fail("admin", "2001:db8::2", 0), fail("admin", "2001:db8::ffff:1", 0),
			refused("admin", "2001:db8::3", 0, s),
			allowed("admin", "2001:db8:0:1::1", 0),
		}},
		{"out-of-order clocks", []step{
			fail("u1", a, 10*s), fail("u2", a, 0), fail("u3", a, 5*s),
			fail("u4", a, 0), fail("u5", a, 0), fail("u6", a, 0), fail("u7", a, 0), fail("u8", a, 0),
			refused("u9", a, 10*s, 50*s),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLimiter(t, testLimits())
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch s.op {
				case "fail":
					l.Failed(s.user, s.source, now)
				case "ok":
					l.Succeeded(s.user, s.source)
				case "check":
					ok, retry := l.Allowed(s.user, s.source, now)
					if ok != s.wantOK || retry != s.wantRetry {
						t.Fatalf("step %d: Allowed(%s, %s) at %s = %v, %s; want %v, %s",
							i, s.user, s.source, s.at, ok, retry, s.wantOK, s.wantRetry)
					}
				}
			}
		})
	}
}

func TestLimiterReportsTheAttackOnce(t *testing.T) {
	l := newTestLimiter(t, testLimits())
	var began []int
	for i := range 25 {
		if l.Failed("admin", fmt.Sprintf("10.0.1.%d", i), t0.Add(time.Duration(i)*time.Second)) {
			began = append(began, i)
		}
	}
	// The 10th failure reaches the ceiling; the window then stays full.
	if len(began) != 1 || began[0] != 9 {
		t.Fatalf("attack reported at failures %v, want [9]", began)
	}
	// Once the window has emptied, a new campaign is reported again.
	for i := range 10 {
		if l.Failed("admin", fmt.Sprintf("10.0.2.%d", i), t0.Add(5*time.Minute)) != (i == 9) {
			t.Fatalf("failure %d of the second campaign: wrong report", i)
		}
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int
		n       int
		spacing time.Duration // between failures
		want    int
	}{
		// A failure a second and a minute of memory: at most 60 entries
		// are live in each table; the rest are pruned.
		{"expired entries are pruned", 1000, 500, time.Second, 60},
		// All failures are live: the cap drops the oldest.
		{"the cap holds", 100, 500, time.Millisecond, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := testLimits()
			lim.MaxPairs, lim.MaxSources, lim.MaxUsers = tc.max, tc.max, tc.max
			l := newTestLimiter(t, lim)
			for i := range tc.n {
				// A new user and a new source every time: the worst case
				// for every table.
				l.Failed(fmt.Sprintf("u%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255),
					t0.Add(time.Duration(i)*tc.spacing))
			}
			for name, n := range map[string][2]int{
				"pairs":   {l.pairs.len(), l.pairs.order.Len()},
				"sources": {l.sources.len(), l.sources.order.Len()},
				"users":   {l.users.len(), l.users.order.Len()},
			} {
				if n[0] != tc.want || n[1] != tc.want {
					t.Errorf("%s: %d keys, %d in order, want %d", name, n[0], n[1], tc.want)
				}
			}
		})
	}
}

func TestLimiterKeysAreBounded(t *testing.T) {
	l := newTestLimiter(t, testLimits())
	huge := strings.Repeat("x", 1<<20)
	for i := range 3 {
		l.Failed(huge, huge, t0.Add(time.Duration(i)))
	}
	if ok, _ := l.Allowed(huge, huge, t0); ok {
		t.Error("a long user name escapes the limit")
	}
	for k := range l.pairs.keys {
		if len(k) > 2*len("sha256:")+2*64+1 {
			t.Errorf("pair key of %d bytes", len(k))
		}
	}
}

func TestLimiterEvictsLeastRecentlyFailed(t *testing.T) {
	// An address spraying user names must not evict its own source
	// entry: each failure moves it to the back.
	lim := testLimits()
	lim.MaxSources, lim.MaxPairs, lim.MaxUsers = 10, 10, 10
	lim.SourceWindow = time.Hour
	l := newTestLimiter(t, lim)
	now := t0
	for i := range 100 {
		now = now.Add(time.Millisecond)
		l.Failed(fmt.Sprintf("u%d", i), "10.0.0.1", now)
		l.Failed("admin", fmt.Sprintf("10.1.0.%d", i), now)
	}
	if ok, _ := l.Allowed("anyone", "10.0.0.1", now); ok {
		t.Fatal("the spraying source was evicted")
	}
	if l.sources.get("10.1.0.0") != nil {
		t.Fatal("the least recently failed source was kept")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	lim := testLimits()
	lim.MaxPairs, lim.MaxSources, lim.MaxUsers = 50, 50, 50
	l := newTestLimiter(t, lim)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				user, source := fmt.Sprintf("u%d", (g*500+i)%80), fmt.Sprintf("10.0.0.%d", i%70)
				now := t0.Add(time.Duration(i) * time.Millisecond)
				l.Allowed(user, source, now)
				l.Failed(user, source, now)
				if i%7 == 0 {
					l.Succeeded(user, source)
				}
			}
		})
	}
	wg.Wait()
	for _, n := range []int{l.pairs.len(), l.sources.len(), l.users.len()} {
		if n > 50 {
			t.Fatalf("%d keys, want at most 50", n)
		}
	}
}

func TestNewLimiterRefusesBadLimits(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*Limits)
	}{
		{"FreeFailures", func(l *Limits) { l.FreeFailures = 0 }},
		{"FirstDelay", func(l *Limits) { l.FirstDelay = 0 }},
		{"MaxDelay", func(l *Limits) { l.MaxDelay = l.FirstDelay / 2 }},
		{"PairMemory", func(l *Limits) { l.PairMemory = l.MaxDelay }},
		{"SourceFailures", func(l *Limits) { l.SourceFailures = -1 }},
		{"SourceWindow", func(l *Limits) { l.SourceWindow = 0 }},
		{"UserFailures", func(l *Limits) { l.UserFailures = 0 }},
		{"UserWindow", func(l *Limits) { l.UserWindow = -time.Second }},
		{"MaxPairs", func(l *Limits) { l.MaxPairs = 0 }},
		{"MaxSources", func(l *Limits) { l.MaxSources = 0 }},
		{"MaxUsers", func(l *Limits) { l.MaxUsers = 0 }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			lim := DefaultLimits()
			tc.edit(&lim)
			_, err := NewLimiter(lim)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("NewLimiter: %v, want an error naming %s", err, tc.field)
			}
		})
	}
	if _, err := NewLimiter(DefaultLimits()); err != nil {
		t.Errorf("the defaults: %v", err)
	}
}
