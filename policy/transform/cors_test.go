package transform

import (
	"testing"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

func preflight(origin string, headers ...string) *policytest.Request {
	req := policytest.Get("/orders", append([]string{"Origin", origin, "Access-Control-Request-Method", "POST"}, headers...)...)
	req.MethodV = "OPTIONS"
	return req
}

func TestCORSPreflight(t *testing.T) {
	const lists = `{"origins": ["https://app.example.com", "*.example.org", "https://*.example.net:8443"]}`
	const full = `{"origins": ["*"], "credentials": true, "methods": ["GET", "POST"], "headers": ["X-Token", "Content-Type"], "max_age": "10m"}`
	tests := []struct {
		name, config string
		req          *policytest.Request
		status       int // 204, or 403 refused
		headers      map[string][]string
	}{
		{"exact origin, headers echoed", lists, preflight("https://app.example.com", "Access-Control-Request-Headers", "X-Token, Content-Type"), 204, map[string][]string{
			"access-control-allow-origin":      {"https://app.example.com"},
			"access-control-allow-methods":     {"GET, HEAD, POST, PUT, PATCH, DELETE"},
			"access-control-allow-headers":     {"X-Token, Content-Type"},
			"access-control-max-age":           {"3600"},
			"access-control-allow-credentials": nil,
			"vary":                             {"Origin, Access-Control-Request-Headers"},
		}},
		{"no request headers", lists, preflight("https://app.example.com"), 204, map[string][]string{
			"access-control-allow-headers": nil,
		}},
		{"wildcard, any scheme", lists, preflight("http://a.b.example.org"), 204, map[string][]string{
			"access-control-allow-origin": {"http://a.b.example.org"},
		}},
		{"wildcard with scheme and port", lists, preflight("https://a.example.net:8443"), 204, nil},
		{"wildcard, wrong port", lists, preflight("https://a.example.net"), 403, map[string][]string{"vary": {"Origin"}}},
		{"wildcard, wrong scheme", lists, preflight("http://a.example.net:8443"), 403, nil},
		{"wildcard, bare domain", lists, preflight("https://example.org"), 403, nil},
		{"wildcard, port not in the pattern", lists, preflight("https://a.example.org:8080"), 403, nil},
		{"wildcard, odd label", lists, preflight("https://a@b.example.org"), 403, nil},
		{"wildcard, underscore", lists, preflight("https://a_b.example.org"), 204, nil},
		{"other origin", lists, preflight("https://evil.example.com"), 403, map[string][]string{
			"access-control-allow-origin": nil,
		}},
		{"any origin", `{"origins": ["*"]}`, preflight("https://x.test", "Access-Control-Request-Headers", "X-A"), 204, map[string][]string{
			"access-control-allow-origin":  {"*"},
			"access-control-allow-headers": {"X-A"},
			"vary":                         {"Access-Control-Request-Headers"},
		}},
		{"credentials echo the origin", full, preflight("https://x.test", "Access-Control-Request-Headers", "X-Other"), 204, map[string][]string{
			"access-control-allow-origin":      {"https://x.test"},
			"access-control-allow-credentials": {"true"},
			"access-control-allow-methods":     {"GET, POST"},
			"access-control-allow-headers":     {"X-Token, Content-Type"},
			"access-control-max-age":           {"600"},
			"vary":                             {"Origin"},
		}},
		{"listed headers, any origin", `{"origins": ["*"], "headers": ["X-A"], "max_age": "0s"}`, preflight("https://x.test"), 204, map[string][]string{
			"access-control-allow-headers": {"X-A"},
			"access-control-max-age":       {"0"},
			"vary":                         nil,
		}},
	}
	for _, tt := range tests {
		p := policytest.Build(t, corsKind, tt.config, nil)
		c, ok := run(p, tt.req, nil)
		if ok {
			t.Errorf("%s: preflight passed on", tt.name)
			continue
		}
		a, _ := c.Answer()
		switch tt.status {
		case 204:
			if a.Status != 204 || !a.Raw || len(a.Body) != 0 {
				t.Errorf("%s: answer %+v, want an empty 204", tt.name, a)
			}
		default:
			wantAnswer(t, tt.name, c, 403, "origin_not_allowed")
		}
		// The chain's response phase then runs; it must add nothing.
		before := len(c.ResponseEdits())
		p.(policy.Responder).Respond(c, a.Status)
		if len(c.ResponseEdits()) != before {
			t.Errorf("%s: Respond edited a preflight's answer", tt.name)
		}
		wantHeaders(t, tt.name, policytest.ResponseHeaders(c, nil), tt.headers)
	}
}

func TestCORSActualRequests(t *testing.T) {
	const lists = `{"origins": ["https://app.example.com", "*.example.org"], "expose_headers": ["X-Total"]}`
	tests := []struct {
		name, config string
		req          *policytest.Request
		headers      map[string][]string
	}{
		{"allowed", lists, policytest.Get("/orders", "Origin", "https://app.example.com"), map[string][]string{
			"access-control-allow-origin":   {"https://app.example.com"},
			"access-control-expose-headers": {"X-Total"},
			"vary":                          {"Accept-Encoding", "Origin"},
		}},
		{"not allowed", lists, policytest.Get("/orders", "Origin", "https://evil.test"), map[string][]string{
			"access-control-allow-origin":   nil,
			"access-control-expose-headers": nil,
			"vary":                          {"Accept-Encoding", "Origin"},
		}},
		{"no origin", lists, policytest.Get("/orders"), map[string][]string{
			"access-control-allow-origin": nil,
			"vary":                        {"Accept-Encoding", "Origin"},
		}},
		{"OPTIONS without a request method is no preflight", lists,
			func() *policytest.Request {
				r := policytest.Get("/orders", "Origin", "https://app.example.com")
				r.MethodV = "OPTIONS"
				return r
			}(), map[string][]string{
				"access-control-allow-origin": {"https://app.example.com"},
			}},
		{"any origin", `{"origins": ["*"]}`, policytest.Get("/orders", "Origin", "https://x.test"), map[string][]string{
			"access-control-allow-origin":      {"*"},
			"access-control-allow-credentials": nil,
			"vary":                             {"Accept-Encoding"},
		}},
		{"any origin with credentials", `{"origins": ["*"], "credentials": true, "expose_headers": ["X-Total", "X-Page"]}`,
			policytest.Get("/orders", "Origin", "https://x.test"), map[string][]string{
				"access-control-allow-origin":      {"https://x.test"},
				"access-control-allow-credentials": {"true"},
				"access-control-expose-headers":    {"X-Total, X-Page"},
				"vary":                             {"Accept-Encoding", "Origin"},
			}},
		{"expose any header", `{"origins": ["*"], "expose_headers": ["*"]}`,
			policytest.Get("/orders", "Origin", "https://x.test"), map[string][]string{
				"access-control-expose-headers": {"*"},
			}},
	}
	for _, tt := range tests {
		p := policytest.Build(t, corsKind, tt.config, nil)
		c, ok := run(p, tt.req, nil)
		if !ok {
			t.Errorf("%s: refused", tt.name)
			continue
		}
		p.(policy.Responder).Respond(c, 200)
		got := policytest.ResponseHeaders(c, map[string][]string{"Vary": {"Accept-Encoding"}})
		wantHeaders(t, tt.name, got, tt.headers)
	}
}

func TestCORSConfigErrors(t *testing.T) {
	wantErrors(t, corsKind, `{}`, nil, `origins: required`)
	wantErrors(t, corsKind, `{"origins": []}`, nil, `origins: must not be empty`)
	wantErrors(t, corsKind, `{"origins": "*"}`, nil, `origins: must be a list of strings, got a string`)
	wantErrors(t, corsKind, `{"origins": ["*", "https://a.example.com"]}`, nil,
		`origins[0]: "*" allows every origin: it must be the only one`)
	wantErrors(t, corsKind, `{"origins": ["app.example.com", "https://a.example.com/", "ftp://a.example.com", "https://a.example.com:0", "https://*.a.*.com", "*example.com", "null"]}`, nil,
		`origins[0]: must be "*", an origin such as "https://app.example.com" or a wildcard such as "*.example.com", got "app.example.com"`,
		`origins[1]: must be "*", an origin such as "https://app.example.com" or a wildcard such as "*.example.com", got "https://a.example.com/"`,
		`origins[2]: must be "*", an origin such as "https://app.example.com" or a wildcard such as "*.example.com", got "ftp://a.example.com"`,
		`origins[3]: must be "*", an origin such as "https://app.example.com" or a wildcard such as "*.example.com", got "https://a.example.com:0"`,
		`origins[4]: a wildcard origin is "*.example.com" or "https://*.example.com", with an optional port, got "https://*.a.*.com"`,
		`origins[5]: a wildcard origin is "*.example.com" or "https://*.example.com", with an optional port, got "*example.com"`,
		`origins[6]: must be "*", an origin such as "https://app.example.com" or a wildcard such as "*.example.com", got "null"`)
	wantErrors(t, corsKind, `{"origins": ["*"], "methods": ["get", "POST"], "headers": ["*", "X A"], "credentials": true, "expose_headers": ["*"], "max_age": "48h", "maxage": 1}`, nil,
		`methods[0]: "get" is not a method: methods are upper-case tokens such as "GET"`,
		`headers[0]: "*" is not needed: leave headers out to allow the headers the browser asks for`,
		`headers[1]: "X A" is not a valid header name`,
		`expose_headers[0]: "*" is not a wildcard for requests with credentials: list the headers`,
		`max_age: must be between 0s and 24h0m0s`,
		`maxage: unknown field`)
	wantErrors(t, corsKind, `{"origins": ["*"], "methods": [], "headers": []}`, nil,
		`methods: must not be empty`,
		`headers: must not be empty: leave it out to allow the headers the browser asks for`)
}

func BenchmarkCORS(b *testing.B) {
	p := policytest.Build(b, corsKind, `{"origins": ["https://app.example.com", "*.example.org"], "expose_headers": ["X-Total"]}`, nil)
	b.Run("preflight", func(b *testing.B) {
		benchRun(b, p, newBenchReq("OPTIONS", "/orders", "192.0.2.1",
			"Origin", "https://a.example.org", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "X-Token"), nil)
	})
	b.Run("actual", func(b *testing.B) {
		benchRun(b, p, newBenchReq("GET", "/orders", "192.0.2.1", "Origin", "https://app.example.com"), nil)
	})
}
