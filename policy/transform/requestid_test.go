package transform

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

var (
	counterID = regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]+$`)
	uuidV4    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestRequestID(t *testing.T) {
	tests := []struct {
		name, config string
		req          *policytest.Request
		// id is the id wanted, or a pattern it must match.
		id      string
		pattern *regexp.Regexp
		// upstream and client are the edits of the configured header (nil
		// for none): the engines carry X-Request-Id themselves.
		upstream, client bool
	}{
		{name: "new counter id", config: `{}`, req: policytest.Get("/"), pattern: counterID},
		{name: "client's kept", config: `{}`, req: policytest.Get("/", "X-Request-Id", "abc-123"), id: "abc-123"},
		{name: "client's overridden", config: `{"override_client": true}`, req: policytest.Get("/", "X-Request-Id", "abc-123"), pattern: counterID},
		{name: "client's with a space replaced", config: `{}`, req: policytest.Get("/", "X-Request-Id", "a b"), pattern: counterID},
		{name: "client's too long replaced", config: `{}`, req: policytest.Get("/", "X-Request-Id", strings.Repeat("a", 129)), pattern: counterID},
		{name: "client's at the longest kept", config: `{}`, req: policytest.Get("/", "X-Request-Id", strings.Repeat("a", 128)), id: strings.Repeat("a", 128)},
		{name: "uuid under another header", config: `{"header": "X-Trace-Id", "generate": "uuid"}`, req: policytest.Get("/", "X-Request-Id", "other"),
			pattern: uuidV4, upstream: true, client: true},
		{name: "client's under another header", config: `{"header": "X-Trace-Id"}`, req: policytest.Get("/", "x-trace-id", "t1"),
			id: "t1", client: true},
		{name: "not returned", config: `{"header": "X-Trace-Id", "response": false}`, req: policytest.Get("/"),
			pattern: counterID, upstream: true},
	}
	for _, tt := range tests {
		p := policytest.Build(t, requestIDKind, tt.config, nil)
		c, ok := run(p, tt.req, func(c *policy.Context) { c.RequestID = []byte("engine-id") })
		if !ok {
			t.Fatalf("%s: refused", tt.name)
		}
		id := string(c.RequestID)
		if tt.pattern != nil && !tt.pattern.MatchString(id) || tt.pattern == nil && id != tt.id {
			t.Errorf("%s: id %q, want %q%v", tt.name, id, tt.id, tt.pattern)
		}
		if v, _ := c.Var(VarRequestID); string(v) != id {
			t.Errorf("%s: var %q, id %q", tt.name, v, id)
		}
		header := strings.ToLower(p.(*requestID).header)
		for _, side := range []struct {
			what  string
			edits []policy.HeaderEdit
			want  bool
		}{{"upstream", c.RequestEdits(), tt.upstream}, {"client", c.ResponseEdits(), tt.client}} {
			var got []string
			for i := range side.edits {
				e := &side.edits[i]
				if e.Op != policy.EditSet || strings.ToLower(e.Name) != header {
					t.Errorf("%s: unexpected %s edit %+v", tt.name, side.what, e)
				}
				got = append(got, string(c.Value(e)))
			}
			if side.want && (len(got) != 1 || got[0] != id) || !side.want && len(got) != 0 {
				t.Errorf("%s: %s gets %s %q, want %v", tt.name, side.what, header, got, side.want)
			}
		}
	}
}

func TestRequestIDCounter(t *testing.T) {
	p := policytest.Build(t, requestIDKind, `{}`, nil)
	c1, _ := run(p, policytest.Get("/"), nil)
	c2, _ := run(p, policytest.Get("/"), nil)
	a, b := string(c1.RequestID), string(c2.RequestID)
	if !strings.HasSuffix(a, "-1") || !strings.HasSuffix(b, "-2") || a[:17] != b[:17] {
		t.Errorf("ids %q, %q: want one prefix and counting from 1", a, b)
	}
	other, _ := run(policytest.Build(t, requestIDKind, `{}`, nil), policytest.Get("/"), nil)
	if string(other.RequestID[:17]) == a[:17] {
		t.Errorf("two builds share the prefix %q", a[:17])
	}
}

func TestRequestIDConfigErrors(t *testing.T) {
	wantErrors(t, requestIDKind, `{"header": "Bad Header", "generate": "random", "override_client": "yes", "respond": true}`, nil,
		`header: "Bad Header" is not a valid header name`,
		`generate: must be "counter" or "uuid"`,
		`override_client: must be true or false, got a string`,
		`respond: unknown field`)
	wantErrors(t, requestIDKind, `{"response": false}`, nil,
		`response: the gateway always returns X-Request-Id: false only applies to another header`)
	wantErrors(t, requestIDKind, `{"header": "x-request-id", "response": false}`, nil,
		`response: the gateway always returns X-Request-Id: false only applies to another header`)
	wantErrors(t, requestIDKind, `{"header": "Host"}`, nil, `header: Host cannot be edited: set with proxy-rewrite's host`)
}

func BenchmarkRequestID(b *testing.B) {
	for _, bc := range []struct{ name, config string }{
		{"counter", `{}`},
		{"counter-other-header", `{"header": "X-Trace-Id"}`},
		{"uuid", `{"generate": "uuid"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchRun(b, policytest.Build(b, requestIDKind, bc.config, nil), newBenchReq("GET", "/", "192.0.2.1"), nil)
		})
	}
	b.Run("client", func(b *testing.B) {
		benchRun(b, policytest.Build(b, requestIDKind, `{}`, nil), newBenchReq("GET", "/", "192.0.2.1", "X-Request-Id", "f00d-42"), nil)
	})
}
