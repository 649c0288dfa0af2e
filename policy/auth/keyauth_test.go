package auth

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

func TestKeyAuth(t *testing.T) {
	tests := []struct {
		name   string
		config string
		req    *policytest.Request
		want   outcome
	}{
		{"default header", `{}`, policytest.Get("/", "X-API-Key", "alice-key"),
			outcome{consumer: "alice", credential: "key"}},
		{"header any case", `{}`, policytest.Get("/", "x-api-key", "alice-key"),
			outcome{consumer: "alice", credential: "key"}},
		{"own header", `{"header": "apikey"}`, policytest.Get("/", "apikey", "alice-key"),
			outcome{consumer: "alice", credential: "key"}},
		{"missing", `{}`, policytest.Get("/"), outcome{message: "missing API key"}},
		{"empty header", `{}`, policytest.Get("/", "X-API-Key", ""), outcome{message: "missing API key"}},
		{"unknown", `{}`, policytest.Get("/", "X-API-Key", "nope"), outcome{message: "invalid API key"}},
		{"query not configured", `{}`, policytest.Get("/?apikey=alice-key"), outcome{message: "missing API key"}},
		{"query", `{"query": "apikey"}`, policytest.Get("/?a=1&apikey=alice-key&b"),
			outcome{consumer: "alice", credential: "key"}},
		{"query decoded", `{"query": "apikey"}`, policytest.Get("/?apikey=bob+key%2F%2B"),
			outcome{consumer: "bob", credential: "key"}},
		{"query bad escape", `{"query": "apikey"}`, policytest.Get("/?apikey=bob%2"),
			outcome{message: "invalid API key"}},
		{"query name exact", `{"query": "apikey"}`, policytest.Get("/?xapikey=alice-key&apikeyx=alice-key"),
			outcome{message: "missing API key"}},
		{"query empty", `{"query": "apikey"}`, policytest.Get("/?apikey="), outcome{message: "missing API key"}},
		{"header wins", `{"query": "apikey"}`, policytest.Get("/?apikey=alice-key", "X-API-Key", "bob key/+"),
			outcome{consumer: "bob", credential: "key"}},
		{"anonymous", `{"anonymous": "guest"}`, policytest.Get("/"),
			outcome{consumer: "guest", credential: "anonymous"}},
		{"anonymous with key", `{"anonymous": "guest"}`, policytest.Get("/", "X-API-Key", "alice-key"),
			outcome{consumer: "alice", credential: "key"}},
		{"anonymous is not for wrong keys", `{"anonymous": "guest"}`, policytest.Get("/", "X-API-Key", "nope"),
			outcome{message: "invalid API key"}},
	}
	env := policytest.Env(consumers())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policytest.Build(t, keyAuthKind, tt.config, env)
			c, ok := policytest.Run(p, tt.req)
			check(t, c, ok, tt.want, `Key realm="gatehouse"`)
		})
	}
}

// An earlier authentication policy's consumer is kept by one that only
// has its anonymous consumer to offer.
func TestKeyAuthAnonymousKeepsIdentified(t *testing.T) {
	cs := consumers()
	p := policytest.Build(t, keyAuthKind, `{"anonymous": "guest"}`, policytest.Env(cs))
	c := &policy.Context{}
	c.Reset(policytest.Get("/"), time.Now())
	c.Identify(cs.Named("bob"), "basic")
	if !p.Run(c) || c.ConsumerName() != "bob" || c.Credential != "basic" {
		t.Fatalf("consumer %q by %q, want bob by basic", c.ConsumerName(), c.Credential)
	}
}

func TestKeyAuthHideCredentials(t *testing.T) {
	checkHideCredentials(t, keyAuthKind, policytest.Get("/", "X-API-Key", "alice-key", "Accept", "*/*"), "X-API-Key")
}

func TestKeyAuthHideQueryKey(t *testing.T) {
	env := policytest.Env(consumers())
	for _, tt := range []struct {
		config, query, want string
		set                 bool
	}{
		{`{"query": "apikey", "hide_credentials": true}`, "a=1&apikey=alice-key&b=2", "a=1&b=2", true},
		{`{"query": "apikey", "hide_credentials": true}`, "apikey=alice-key", "", true},
		{`{"query": "apikey", "hide_credentials": true}`, "apikey=alice-key&apikey=x&z", "z", true},
		{`{"query": "apikey"}`, "a=1&apikey=alice-key", "a=1&apikey=alice-key", false},
	} {
		p := policytest.Build(t, keyAuthKind, tt.config, env)
		c, ok := policytest.Run(p, policytest.Get("/?"+tt.query))
		if !ok {
			t.Fatalf("%s %s: refused", tt.config, tt.query)
		}
		if q, set := c.Query(); string(q) != tt.want || set != tt.set {
			t.Errorf("%s %s: upstream query %q (set %v), want %q", tt.config, tt.query, q, set, tt.want)
		}
	}
}

func TestKeyAuthConfigErrors(t *testing.T) {
	env := policytest.Env(consumers())
	checkErrors(t, keyAuthKind,
		`{"header": "X Key", "query": "a&b", "hide_credentials": "yes", "anonymous": "nobody", "realm": "x"}`, env,
		[]string{
			"header: must be an HTTP header name",
			`query: must be a query parameter name, without "&", "=", "#", "%", "+" or spaces`,
			"hide_credentials: must be true or false, got a string",
			`anonymous: unknown consumer "nobody"`,
			"realm: unknown field",
		})
	checkErrors(t, keyAuthKind, `{"header": 1, "query": ""}`, env, []string{
		"header: must be a string, got an integer",
		`query: must be a query parameter name, without "&", "=", "#", "%", "+" or spaces`,
	})
}

func TestQueryParam(t *testing.T) {
	for _, tt := range []struct {
		q, name, want string
		found         bool
	}{
		{"k=v", "k", "v", true},
		{"a=1&k=v&k=w", "k", "v", true},
		{"k", "k", "", false},
		{"k=", "k", "", false},
		{"kk=v&=x", "k", "", false},
		{"", "k", "", false},
		{"a=1&&k=2=3", "k", "2=3", true},
	} {
		got := queryParam([]byte(tt.q), tt.name)
		if string(got) != tt.want || (len(got) > 0) != tt.found {
			t.Errorf("queryParam(%q, %q) = %q, want %q", tt.q, tt.name, got, tt.want)
		}
	}
}

func BenchmarkKeyAuth(b *testing.B) {
	p := policytest.Build(b, keyAuthKind, `{"query": "apikey"}`, policytest.Env(consumers()))
	req := &benchRequest{
		query:   []byte("page=2&apikey=unused"),
		headers: [][2][]byte{{[]byte("Accept"), []byte("*/*")}, {[]byte("X-API-Key"), []byte("alice-key")}},
	}
	benchAdmit(b, p, req)
}

func BenchmarkKeyAuthQuery(b *testing.B) {
	p := policytest.Build(b, keyAuthKind, `{"query": "apikey"}`, policytest.Env(consumers()))
	req := &benchRequest{query: []byte("page=2&apikey=bob+key%2F%2B")}
	benchAdmit(b, p, req)
}
