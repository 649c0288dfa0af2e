package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// recorder notes its name in the request's trail when it runs; identify
// makes it identify the consumer it holds; answer makes it refuse.
type recorder struct {
	name     string
	identify *policy.Consumer
	answer   bool
}

func (r *recorder) Run(c *policy.Context) bool {
	trail, _ := c.Var("trail")
	c.SetVar("trail", append(append([]byte(nil), trail...), r.name+" "...))
	if r.identify != nil {
		c.Identify(r.identify, "key")
	}
	if r.answer {
		c.Reject(429, "rate_limited", "slow down")
		return false
	}
	return true
}

// responder also acts on the response, logger on the finished exchange.
type responder struct{ recorder }

func (r *responder) Respond(c *policy.Context, status int) {
	c.AddResponseHeader("X-Responded", []byte(r.name))
}

type logger struct{ recorder }

func (l *logger) Log(c *policy.Context, o *policy.Outcome) {
	c.SetVar("logged", []byte(l.name))
}

func kind(name string, ph policy.Phase, prio int) *policy.Kind {
	return &policy.Kind{Name: name, Phase: ph, Priority: prio}
}

var (
	reqID   = kind("request-id", policy.PhaseRewrite, 200)
	ipr     = kind("ip-restriction", policy.PhaseAccess, 1000)
	keyAuth = kind("key-auth", policy.PhaseAccess, 800)
	limit   = kind("rate-limit", policy.PhaseAccess, 700)
	ext     = kind("external", policy.PhaseAccess, 600)
	headers = kind("request-headers", policy.PhaseBeforeProxy, 100)
	resp    = kind("response-headers", policy.PhaseResponse, 100)
)

func step(k *policy.Kind, name string) policy.Step {
	return policy.Step{Kind: k, Policy: &recorder{name: name}}
}

func run(ch *policy.Chain) (string, *policy.Context, bool) {
	c := &policy.Context{}
	c.Reset(policytest.Get("/x"), time.Now())
	ok := ch.Run(c)
	trail, _ := c.Var("trail")
	return strings.TrimSpace(string(trail)), c, ok
}

func TestChainOrderAndScopes(t *testing.T) {
	partner := &policy.Consumer{Name: "partner"}
	partner.SetChain(policy.NewChain([]policy.Step{
		step(limit, "consumer-limit"),
		step(ext, "consumer-external"),
		step(keyAuth, "consumer-key-auth"), // already ran: ignored
	}))
	auth := policy.Step{Kind: keyAuth, Policy: &recorder{name: "key-auth", identify: partner}}
	anonymous := policy.Step{Kind: keyAuth, Policy: &recorder{name: "key-auth"}}

	tests := []struct {
		name  string
		steps []policy.Step // global, then service, then route
		want  string
	}{
		{"phases and priorities whatever the scope order",
			[]policy.Step{step(headers, "headers"), step(limit, "global-limit"), step(reqID, "id"), step(ipr, "ip"), anonymous},
			"id ip key-auth global-limit headers"},
		{"narrower scope replaces a kind",
			[]policy.Step{step(limit, "global-limit"), step(reqID, "id"), step(limit, "route-limit"), anonymous},
			"id key-auth route-limit"},
		{"consumer replaces and adds after identification",
			[]policy.Step{step(limit, "route-limit"), auth, step(headers, "headers")},
			"key-auth consumer-limit consumer-external headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, ok := run(policy.NewChain(tt.steps))
			if !ok || got != tt.want {
				t.Fatalf("ran %q (ok %v), want %q", got, ok, tt.want)
			}
		})
	}
}

func TestChainStopsOnAnswer(t *testing.T) {
	ch := policy.NewChain([]policy.Step{
		step(reqID, "id"),
		{Kind: limit, Policy: &recorder{name: "limit", answer: true}},
		step(headers, "headers"),
		{Kind: resp, Policy: &responder{recorder{name: "resp"}}},
	})
	got, c, ok := run(ch)
	if ok || got != "id limit" {
		t.Fatalf("ran %q ok %v, want %q and a stop", got, ok, "id limit")
	}
	a, answered := c.Answer()
	if !answered || a.Status != 429 || a.Code != "rate_limited" {
		t.Fatalf("answer %+v %v", a, answered)
	}
	// The response phase still runs on the answer.
	ch.Respond(c, a.Status)
	if e := c.ResponseEdits(); len(e) != 1 || string(c.Value(&e[0])) != "resp" {
		t.Fatalf("response edits %+v", e)
	}
}

func TestChainConsumerResponderAndLogger(t *testing.T) {
	logKind := kind("http-log", policy.PhaseLog, 100)
	partner := &policy.Consumer{Name: "partner"}
	partner.SetChain(policy.NewChain([]policy.Step{
		{Kind: logKind, Policy: &logger{recorder{name: "consumer-log"}}},
		{Kind: resp, Policy: &responder{recorder{name: "consumer-resp"}}},
	}))
	ch := policy.NewChain([]policy.Step{
		{Kind: keyAuth, Policy: &recorder{name: "key-auth", identify: partner}},
		{Kind: logKind, Policy: &logger{recorder{name: "route-log"}}},
		{Kind: resp, Policy: &responder{recorder{name: "route-resp"}}},
	})
	_, c, _ := run(ch)
	ch.Respond(c, 200)
	ch.Log(c, &policy.Outcome{Status: 200})
	if e := c.ResponseEdits(); len(e) != 1 || string(c.Value(&e[0])) != "consumer-resp" {
		t.Fatalf("response edits %+v, want only the consumer's", e)
	}
	if v, _ := c.Var("logged"); string(v) != "consumer-log" {
		t.Fatalf("logged by %q, want consumer-log", v)
	}
	if !ch.Logs() || ch.Blocking() {
		t.Fatalf("Logs %v Blocking %v", ch.Logs(), ch.Blocking())
	}
}

func TestContextEdits(t *testing.T) {
	req := policytest.Get("/x", "X-Keep", "1", "X-Old", "o", "X-Gone", "g")
	c := &policy.Context{}
	c.Reset(req, time.Now())
	c.SetRequestHeader("X-New", []byte("n"))
	c.RenameRequestHeader("X-Old", "X-Renamed")
	c.DelRequestHeader("X-Gone")
	c.AddRequestHeader("X-Keep", []byte("2"))
	if v := c.RequestHeader("x-new"); string(v) != "n" {
		t.Errorf("RequestHeader(x-new) = %q", v)
	}
	if v := c.RequestHeader("X-Renamed"); string(v) != "o" {
		t.Errorf("RequestHeader(X-Renamed) = %q", v)
	}
	if v := c.RequestHeader("X-Gone"); v != nil {
		t.Errorf("RequestHeader(X-Gone) = %q, want nil", v)
	}
	got := policytest.RequestHeaders(c, req)
	want := map[string]string{"x-keep": "1,2", "x-renamed": "o", "x-new": "n"}
	if len(got) != len(want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	for k, v := range want {
		if strings.Join(got[k], ",") != v {
			t.Errorf("%s = %v, want %s", k, got[k], v)
		}
	}
	c.SetPath([]byte("/y"))
	if p, set := c.Path(); !set || string(p) != "/y" {
		t.Errorf("Path() = %q %v", p, set)
	}
}

func TestContextAllocatesNothingOnceWarm(t *testing.T) {
	c := &policy.Context{}
	req := policytest.Get("/x", "X-A", "1")
	value := []byte("v")
	allocs := testing.AllocsPerRun(100, func() {
		c.Reset(req, time.Time{})
		c.SetRequestHeader("X-B", value)
		c.SetResponseHeaderString("X-RateLimit-Remaining", "10")
		c.SetVar("k", value)
		_ = c.RequestHeader("X-B")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}
