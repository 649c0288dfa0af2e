package ratelimit

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

func TestLimitExactThen429(t *testing.T) {
	p := policytest.Build(t, kind, `{"limits": [{"requests": 3, "window": "minute"}], "key": "ip"}`, env(t, nil))
	req := from("192.0.2.1")
	for i, want := range []string{
		"x-ratelimit-limit=3 x-ratelimit-remaining=2 x-ratelimit-reset=50",
		"x-ratelimit-limit=3 x-ratelimit-remaining=1 x-ratelimit-reset=50",
		"x-ratelimit-limit=3 x-ratelimit-remaining=0 x-ratelimit-reset=50",
	} {
		c, ok := at(p, req, t0)
		if !ok {
			t.Fatalf("request %d refused", i)
		}
		if got := headers(c); got != want {
			t.Errorf("request %d: headers %q, want %q", i, got, want)
		}
	}
	c, ok := at(p, req, t0.Add(time.Second))
	if ok {
		t.Fatal("fourth request allowed")
	}
	a, _ := c.Answer()
	if a.Status != http.StatusTooManyRequests || a.Code != "rate_limited" {
		t.Errorf("answer %d %q, want 429 rate_limited", a.Status, a.Code)
	}
	// The three requests become the previous window's at 1m: they weigh
	// 3 until then, so the next request fits just after.
	if got, want := headers(c), "x-ratelimit-limit=3 x-ratelimit-remaining=0 x-ratelimit-reset=49 retry-after=49"; got != want {
		t.Errorf("refused: headers %q, want %q", got, want)
	}
	// Another address has its own count.
	if _, ok := at(p, from("192.0.2.2"), t0); !ok {
		t.Error("another address refused")
	}
}

// Past a window's end its count weighs on the next window in proportion
// to what of it is still within one window of now.
func TestWindowsRollOver(t *testing.T) {
	p := policytest.Build(t, kind, `{"limits": [{"requests": 10, "window": "minute"}], "key": "ip"}`, env(t, nil))
	req := from("192.0.2.1")
	minute := t0.Truncate(time.Minute)
	if n := allowedOf(p, req, t0, 20); n != 10 {
		t.Fatalf("first window: %d allowed, want 10", n)
	}
	// 15 s into the next window, the 10 weigh 7.5: three more fit (the
	// third sees 7.5 + 2 < 10), a fourth would see 10.5.
	next := minute.Add(75 * time.Second)
	if n := allowedOf(p, req, next, 5); n != 3 {
		t.Fatalf("15s into the next window: %d allowed, want 3", n)
	}
	c, _ := at(p, req, next)
	// 7.5 + 3 >= 10 until the weight of the 10 falls by 0.5: 3 s later.
	if got, want := headers(c), "x-ratelimit-limit=10 x-ratelimit-remaining=0 x-ratelimit-reset=45 retry-after=3"; got != want {
		t.Errorf("headers %q, want %q", got, want)
	}
	if _, ok := at(p, req, next.Add(3*time.Second+time.Millisecond)); !ok {
		t.Error("refused after Retry-After")
	}
	// Two windows later nothing weighs any more.
	if n := allowedOf(p, req, minute.Add(3*time.Minute), 20); n != 10 {
		t.Errorf("two windows later: %d allowed, want 10", n)
	}
}

// The headers describe the limit with the fewest requests left; a refusal,
// the limit that makes the client wait longest.
func TestSeveralLimits(t *testing.T) {
	p := policytest.Build(t, kind, `{"limits": [{"requests": 5, "window": "minute"}, {"requests": 2, "window": "second"}], "key": "ip"}`, env(t, nil))
	req := from("192.0.2.1")
	c, _ := at(p, req, t0)
	if got, want := headers(c), "x-ratelimit-limit=2 x-ratelimit-remaining=1 x-ratelimit-reset=1"; got != want {
		t.Errorf("first: headers %q, want %q", got, want)
	}
	at(p, req, t0)
	c, ok := at(p, req, t0)
	if ok {
		t.Fatal("third request in one second allowed")
	}
	if got, want := headers(c), "x-ratelimit-limit=2 x-ratelimit-remaining=0 x-ratelimit-reset=1 retry-after=1"; got != want {
		t.Errorf("refused by the second: headers %q, want %q", got, want)
	}
	// A refused request is not counted: two seconds later (the second
	// before that one counted nothing) 2 more pass, then the minute's limit
	// of 5 is the one with the fewest left.
	at(p, req, t0.Add(2*time.Second))
	at(p, req, t0.Add(2*time.Second))
	c, _ = at(p, req, t0.Add(4*time.Second))
	if got, want := headers(c), "x-ratelimit-limit=5 x-ratelimit-remaining=0 x-ratelimit-reset=46"; got != want {
		t.Errorf("fifth: headers %q, want %q", got, want)
	}
	c, ok = at(p, req, t0.Add(6*time.Second))
	if ok {
		t.Fatal("sixth request in the minute allowed")
	}
	if got, want := headers(c), "x-ratelimit-limit=5 x-ratelimit-remaining=0 x-ratelimit-reset=44 retry-after=44"; got != want {
		t.Errorf("refused by the minute: headers %q, want %q", got, want)
	}
}

func TestHeadersOff(t *testing.T) {
	p := policytest.Build(t, kind, `{"limits": [{"requests": 1, "window": "hour"}], "headers": false}`, env(t, nil))
	c, _ := at(p, from("192.0.2.1"), t0)
	if got := headers(c); got != "" {
		t.Errorf("allowed: headers %q, want none", got)
	}
	c, _ = at(p, from("192.0.2.1"), t0)
	if got, want := headers(c), "retry-after=3590"; got != want {
		t.Errorf("refused: headers %q, want %q", got, want)
	}
}

func TestKeys(t *testing.T) {
	consumers := policy.NewConsumers()
	alice, bob := consumers.Add("alice"), consumers.Add("bob")
	tests := []struct {
		name, config string
		// two requests that share a count, and one that does not
		same1, same2, other func(p policy.Policy) bool
	}{
		{
			name:   "consumer",
			config: `{"limits": [{"requests": 1, "window": "minute"}]}`,
			same1:  func(p policy.Policy) bool { return runAs(p, alice, from("192.0.2.1")) },
			same2:  func(p policy.Policy) bool { return runAs(p, alice, from("192.0.2.2")) },
			other:  func(p policy.Policy) bool { return runAs(p, bob, from("192.0.2.1")) },
		},
		{
			name:   "consumer falls back to the address",
			config: `{"limits": [{"requests": 1, "window": "minute"}], "key": "consumer"}`,
			same1:  func(p policy.Policy) bool { return runAs(p, nil, from("192.0.2.1")) },
			same2:  func(p policy.Policy) bool { return runAs(p, nil, from("192.0.2.1")) },
			other:  func(p policy.Policy) bool { return runAs(p, nil, from("192.0.2.2")) },
		},
		{
			name:   "ip",
			config: `{"limits": [{"requests": 1, "window": "minute"}], "key": "ip"}`,
			same1:  func(p policy.Policy) bool { return runAs(p, alice, from("2001:db8::1")) },
			same2:  func(p policy.Policy) bool { return runAs(p, bob, from("2001:db8::1")) },
			other:  func(p policy.Policy) bool { return runAs(p, alice, from("2001:db8::2")) },
		},
		{
			name:   "header",
			config: `{"limits": [{"requests": 1, "window": "minute"}], "key": "header", "header_name": "X-Tenant"}`,
			same1:  func(p policy.Policy) bool { return runAs(p, alice, from("192.0.2.1", "X-Tenant", "acme")) },
			same2:  func(p policy.Policy) bool { return runAs(p, bob, from("192.0.2.2", "x-tenant", "acme")) },
			other:  func(p policy.Policy) bool { return runAs(p, alice, from("192.0.2.1", "X-Tenant", "umbrella")) },
		},
		{
			name:   "header missing falls back to the address",
			config: `{"limits": [{"requests": 1, "window": "minute"}], "key": "header", "header_name": "X-Tenant"}`,
			same1:  func(p policy.Policy) bool { return runAs(p, nil, from("192.0.2.1")) },
			same2:  func(p policy.Policy) bool { return runAs(p, nil, from("192.0.2.1", "X-Tenant", "")) },
			other:  func(p policy.Policy) bool { return runAs(p, nil, from("192.0.2.1", "X-Tenant", "acme")) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policytest.Build(t, kind, tt.config, env(t, nil))
			if !tt.same1(p) {
				t.Fatal("first request refused")
			}
			if tt.same2(p) {
				t.Error("second request of the same key allowed")
			}
			if !tt.other(p) {
				t.Error("request of another key refused")
			}
		})
	}
}

func runAs(p policy.Policy, who *policy.Consumer, req policy.Request) bool {
	c := &policy.Context{}
	c.Reset(req, t0)
	if who != nil {
		c.Identify(who, "key")
	}
	return p.Run(c)
}
