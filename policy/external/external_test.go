package external

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/external/sdk"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

const signatureConfig = `{"plugin": "signature", "config": {"secret": "s3cret"}}`

// signature is the example plugin's signature of a request without query
// and body, computed here from the documented form.
func signature(secret, method, path string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + "\n" + path + "\n"))
	return hex.EncodeToString(m.Sum(nil))
}

func answer(t *testing.T, c *policy.Context) policy.Answer {
	t.Helper()
	a, ok := c.Answer()
	if !ok {
		t.Fatal("the request was not answered")
	}
	return a
}

func verdict(c *policy.Context) string {
	v, _ := c.Var(Var)
	return string(v)
}

func TestSignaturePlugin(t *testing.T) {
	env, _, _ := gatewayEnv(t)
	p := policytest.Build(t, Kind, signatureConfig, env)

	t.Run("allowed", func(t *testing.T) {
		req := policytest.Get("/orders/7", "X-Signature", signature("s3cret", "GET", "/orders/7"), "Accept", "*/*")
		c, ok := policytest.Run(p, req)
		if !ok {
			t.Fatalf("refused: %+v", answer(t, c))
		}
		got := policytest.RequestHeaders(c, req)
		want := map[string][]string{"accept": {"*/*"}, "x-signature-verified": {"true"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("upstream headers %v, want %v", got, want)
		}
		if verdict(c) != "modify" {
			t.Errorf("verdict %q", verdict(c))
		}
	})
	for _, tt := range []struct {
		name    string
		req     *policytest.Request
		message string
	}{
		{"wrong signature", policytest.Get("/orders/7", "X-Signature", signature("other", "GET", "/orders/7")), "invalid signature"},
		{"other path", policytest.Get("/orders/8", "X-Signature", signature("s3cret", "GET", "/orders/7")), "invalid signature"},
		{"missing", policytest.Get("/orders/7"), "missing X-Signature header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := policytest.Run(p, tt.req)
			if ok {
				t.Fatal("allowed")
			}
			want := policy.Answer{Status: 401, Code: "rejected_by_policy", Message: tt.message}
			if a := answer(t, c); !reflect.DeepEqual(a, want) {
				t.Errorf("answer %+v, want %+v", a, want)
			}
			if verdict(c) != "reject" {
				t.Errorf("verdict %q", verdict(c))
			}
		})
	}
}

func TestVerdicts(t *testing.T) {
	env, _, met := gatewayEnv(t)
	p := policytest.Build(t, Kind, `{"plugin": "testplugin"}`, env)
	open := policytest.Build(t, Kind, `{"plugin": "testplugin", "failure_mode": "open"}`, env)

	t.Run("continue", func(t *testing.T) {
		c, ok := policytest.Run(p, policytest.Get("/"))
		if !ok || len(c.RequestEdits()) != 0 || len(c.ResponseEdits()) != 0 || verdict(c) != "continue" {
			t.Errorf("ok %v, edits %v %v, verdict %q", ok, c.RequestEdits(), c.ResponseEdits(), verdict(c))
		}
	})
	t.Run("modify", func(t *testing.T) {
		req := policytest.Get("/", "X-Test-Action", "modify", "X-Remove-Me", "1")
		c, ok := policytest.Run(p, req)
		if !ok {
			t.Fatalf("refused: %+v", answer(t, c))
		}
		up := policytest.RequestHeaders(c, req)
		if _, there := up["x-remove-me"]; there || up["x-added"][0] != "yes" {
			t.Errorf("upstream headers %v", up)
		}
		down := policytest.ResponseHeaders(c, map[string][]string{"Content-Type": {"text/plain"}})
		if down["x-seen-by"][0] != "testplugin" || down["content-type"][0] != "text/plain" {
			t.Errorf("response headers %v", down)
		}
	})
	rejects := []struct {
		name   string
		req    *policytest.Request
		answer policy.Answer
	}{
		{"reject with status", policytest.Get("/", "X-Test-Action", "reject", "X-Test-Status", "429", "X-Test-Message", "slow down"),
			policy.Answer{Status: 429, Code: "rejected_by_policy", Message: "slow down"}},
		{"reject defaults", policytest.Get("/", "X-Test-Action", "reject"),
			policy.Answer{Status: 403, Code: "rejected_by_policy", Message: "the request was rejected by policy"}},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := policytest.Run(p, tt.req)
			if ok {
				t.Fatal("allowed")
			}
			if a := answer(t, c); !reflect.DeepEqual(a, tt.answer) {
				t.Errorf("answer %+v, want %+v", a, tt.answer)
			}
			if h := policytest.ResponseHeaders(c, nil); h["www-authenticate"][0] != "Test" {
				t.Errorf("response headers %v", h)
			}
		})
	}
	// A verdict the gateway cannot apply, or no verdict, is a failure:
	// failure_mode decides, and nothing of the verdict is applied.
	unavailable := policy.Answer{Status: 503, Code: "policy_unavailable", Message: "the request's policy could not be checked"}
	for _, tt := range []struct{ action, reason string }{
		{"error", "error"},
		{"panic", "error"},
		{"bad-name", "error"},
		{"bad-value", "error"},
		{"owned", "error"},
	} {
		t.Run(tt.action, func(t *testing.T) {
			before := met.count("testplugin/" + tt.reason)
			req := policytest.Get("/", "X-Test-Action", tt.action, "X-Test-Status", "200")
			c, ok := policytest.Run(p, req)
			if ok {
				t.Fatal("allowed, failing closed")
			}
			if a := answer(t, c); !reflect.DeepEqual(a, unavailable) {
				t.Errorf("answer %+v", a)
			}
			if len(c.RequestEdits()) != 0 || len(c.ResponseEdits()) != 0 || verdict(c) != "failed" {
				t.Errorf("edits %v %v, verdict %q", c.RequestEdits(), c.ResponseEdits(), verdict(c))
			}
			c, ok = policytest.Run(open, req)
			if !ok || len(c.RequestEdits()) != 0 || verdict(c) != "failed" {
				t.Errorf("failing open: ok %v, edits %v, verdict %q", ok, c.RequestEdits(), verdict(c))
			}
			if n := met.count("testplugin/"+tt.reason) - before; n != 2 {
				t.Errorf("%d failures counted as %s, want 2", n, tt.reason)
			}
		})
	}
	t.Run("reject with a status out of range", func(t *testing.T) {
		c, ok := policytest.Run(p, policytest.Get("/", "X-Test-Action", "reject", "X-Test-Status", "302"))
		if ok || !reflect.DeepEqual(answer(t, c), unavailable) {
			t.Errorf("ok %v, answer %+v", ok, answer(t, c))
		}
	})
}

// echo returns the request as the plugin received it.
func echo(t *testing.T, p policy.Policy, c *policy.Context) sdk.Request {
	t.Helper()
	if !p.Run(c) {
		t.Fatalf("refused: %+v", answer(t, c))
	}
	js := policytest.ResponseHeaders(c, nil)["x-test-echo"]
	var got sdk.Request
	if len(js) != 1 || json.Unmarshal([]byte(js[0]), &got) != nil {
		t.Fatalf("no echo: %v", js)
	}
	return got
}

func TestRequestSent(t *testing.T) {
	env, _, _ := gatewayEnv(t)
	all := policytest.Build(t, Kind, `{"plugin": "testplugin", "config": {"team": "blue", "n": 3}}`, env)
	some := policytest.Build(t, Kind, `{"plugin": "testplugin", "headers": ["x-test-action", "X-Wanted"], "body": {"max_bytes": 8}}`, env)

	req := policytest.Get("/v1/items?sort=asc", "X-Test-Action", "echo", "X-Wanted", "1", "X-Other", "2")
	req.CL = 5
	req.BodyV = []byte("hello")
	c := &policy.Context{}
	c.Reset(req, c.Now)
	c.Service, c.Route, c.RequestID = "shop", "items", []byte("req-1")
	got := echo(t, all, c)
	want := sdk.Request{
		Method: "GET", Path: "/v1/items", Query: "sort=asc", Host: "api.example.com",
		Headers:  []sdk.Header{{Name: "X-Test-Action", Value: "echo"}, {Name: "X-Wanted", Value: "1"}, {Name: "X-Other", Value: "2"}},
		ClientIP: "192.0.2.1", Service: "shop", Route: "items", RequestID: "req-1", ContentLength: 5,
		Config: json.RawMessage(`{"n":3,"team":"blue"}`),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sent\n%+v\nwant\n%+v", got, want)
	}

	c.Reset(req, c.Now)
	got = echo(t, some, c)
	want = sdk.Request{
		Method: "GET", Path: "/v1/items", Query: "sort=asc", Host: "api.example.com",
		Headers:  []sdk.Header{{Name: "X-Test-Action", Value: "echo"}, {Name: "X-Wanted", Value: "1"}},
		ClientIP: "192.0.2.1", ContentLength: 5, Body: []byte("hello"), BodyIncluded: true,
		Config: json.RawMessage(`null`),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sent\n%+v\nwant\n%+v", got, want)
	}

	// A body larger than the policy may send cannot be checked.
	req.BodyV, req.CL = []byte("more than 8 bytes"), -1
	c.Reset(req, c.Now)
	if some.Run(c) {
		t.Fatal("a body over max_bytes was allowed")
	}
	wantA := policy.Answer{Status: 413, Code: "body_too_large", Message: "the request body is larger than the 8 bytes this route's policy can check"}
	if a := answer(t, c); !reflect.DeepEqual(a, wantA) {
		t.Errorf("answer %+v, want %+v", a, wantA)
	}
	// A streamed body is not sent; the plugin is told.
	req.Streamed = true
	req.BodyV, req.CL = nil, 3
	c.Reset(req, c.Now)
	if got = echo(t, some, c); got.BodyIncluded || got.Body != nil {
		t.Errorf("streamed body sent: %+v", got)
	}
}
