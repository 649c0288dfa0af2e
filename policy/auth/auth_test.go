package auth

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// consumers is the fixture of every test: alice and bob with keys and
// passwords, and guest without credentials, for `anonymous`.
func consumers() *policy.Consumers {
	cs := policy.NewConsumers()
	alice := cs.Add("alice")
	cs.AddKey(alice, "alice-key")
	cs.AddBasic(alice, "alice", "s3cret:with colon")
	bob := cs.Add("bob")
	cs.AddKey(bob, "bob key/+")
	cs.AddBasic(bob, "bob", "hunter2")
	cs.Add("guest")
	return cs
}

// outcome is what a test expects of one Run: an identified consumer, or
// a 401 with a message.
type outcome struct {
	consumer   string
	credential string
	message    string // non-empty: refused with 401
}

func check(t *testing.T, c *policy.Context, ok bool, want outcome, challenge string) {
	t.Helper()
	a, answered := c.Answer()
	if want.message == "" {
		if !ok || answered {
			t.Fatalf("refused: %d %s %q", a.Status, a.Code, a.Message)
		}
		if got := c.ConsumerName(); got != want.consumer || c.Credential != want.credential {
			t.Fatalf("consumer %q by %q, want %q by %q", got, c.Credential, want.consumer, want.credential)
		}
		return
	}
	if ok || !answered {
		t.Fatalf("allowed as %q, want refused with %q", c.ConsumerName(), want.message)
	}
	if a.Status != 401 || a.Code != "unauthorized" || a.Message != want.message {
		t.Fatalf("answer %d %s %q, want 401 unauthorized %q", a.Status, a.Code, a.Message, want.message)
	}
	if got := policytest.ResponseHeaders(c, nil)["www-authenticate"]; !reflect.DeepEqual(got, []string{challenge}) {
		t.Fatalf("WWW-Authenticate %q, want %q", got, challenge)
	}
	if c.Consumer != nil {
		t.Fatalf("refused request identified as %q", c.ConsumerName())
	}
}

func checkErrors(t *testing.T, kind *policy.Kind, config string, env *policy.Env, want []string) {
	t.Helper()
	got := policytest.Errors(t, kind, config, env)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("errors of %s:\n%s\nwant:\n%s", config, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// checkHideCredentials runs kind on req, which it admits by the
// credential in header, with hide_credentials unset, false and true: the
// upstream gets every header of req, the credential's unless true.
func checkHideCredentials(t *testing.T, kind *policy.Kind, req *policytest.Request, header string) {
	t.Helper()
	env := policytest.Env(consumers())
	for _, tt := range []struct {
		config string
		hidden bool
	}{
		{`{}`, false},
		{`{"hide_credentials": false}`, false},
		{`{"hide_credentials": true}`, true},
	} {
		p := policytest.Build(t, kind, tt.config, env)
		c, ok := policytest.Run(p, req)
		if !ok {
			t.Fatalf("%s: refused", tt.config)
		}
		want := map[string][]string{}
		for _, h := range req.Headers {
			if k := strings.ToLower(h[0]); !tt.hidden || k != strings.ToLower(header) {
				want[k] = append(want[k], h[1])
			}
		}
		if got := policytest.RequestHeaders(c, req); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: upstream headers %v, want %v", tt.config, got, want)
		}
	}
}

// benchAdmit runs p on req b.N times on one Context, reset per request
// as the engines do; p must admit req.
func benchAdmit(b *testing.B, p policy.Policy, req policy.Request) {
	c := &policy.Context{}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req, now)
		if !p.Run(c) {
			b.Fatal("refused")
		}
	}
}

// benchRequest is a policy.Request whose accessors do not allocate, so
// that benchmarks measure the policy alone. It has only what the
// authentication policies read: query and headers.
type benchRequest struct {
	query   []byte
	headers [][2][]byte
}

func (r *benchRequest) Method() []byte { return nil }
func (r *benchRequest) Path() []byte   { return nil }
func (r *benchRequest) Query() []byte  { return r.query }
func (r *benchRequest) Host() []byte   { return nil }
func (r *benchRequest) Header(name string) []byte {
	for _, h := range r.headers {
		if strings.EqualFold(string(h[0]), name) {
			return h[1]
		}
	}
	return nil
}
func (r *benchRequest) VisitHeaders(fn func(name, value []byte)) {
	for _, h := range r.headers {
		fn(h[0], h[1])
	}
}
func (r *benchRequest) ContentLength() int64   { return 0 }
func (r *benchRequest) RemoteAddr() netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, 1}) }
func (r *benchRequest) TLS() bool              { return false }
func (r *benchRequest) Body() ([]byte, bool)   { return nil, true }

func TestKinds(t *testing.T) {
	want := map[string]int{"key-auth": 800, "basic-auth": 790, "jwt-auth": 780}
	for _, k := range Kinds() {
		if k.Phase != policy.PhaseAccess || k.Priority != want[k.Name] || k.Blocking {
			t.Errorf("%s: phase %s priority %d blocking %v", k.Name, k.Phase, k.Priority, k.Blocking)
		}
		delete(want, k.Name)
	}
	if len(want) != 0 {
		t.Errorf("missing kinds %v", want)
	}
}
