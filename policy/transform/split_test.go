package transform

import (
	"testing"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

var splitEnv = policytest.Env(nil, "canary", "blue")

// picks runs p n times on req and counts the upstreams chosen ("" for the
// route's own), with the order they came in.
func picks(t *testing.T, p policy.Policy, req *policytest.Request, n int, setup func(*policy.Context)) (map[string]int, []string) {
	t.Helper()
	counts := map[string]int{}
	var order []string
	for range n {
		c, ok := run(p, req, setup)
		if !ok {
			t.Fatal("refused")
		}
		name := ""
		if c.Upstream != nil {
			name = c.Upstream.(string)
		}
		counts[name]++
		order = append(order, name)
	}
	return counts, order
}

func TestTrafficSplitWeights(t *testing.T) {
	tests := []struct {
		config string
		want   map[string]int // per 100 requests
	}{
		{`{"rules": [{"upstreams": [{"upstream": "canary", "weight": 10}]}]}`, map[string]int{"canary": 10, "": 90}},
		{`{"rules": [{"upstreams": [{"upstream": "canary", "weight": 30}, {"upstream": "blue", "weight": 20}]}]}`, map[string]int{"canary": 30, "blue": 20, "": 50}},
		{`{"rules": [{"upstreams": [{"upstream": "canary", "weight": 33}, {"weight": 67}]}]}`, map[string]int{"canary": 33, "": 67}},
		{`{"rules": [{"upstreams": [{"upstream": "canary", "weight": 100}]}]}`, map[string]int{"canary": 100}},
		{`{"rules": [{"upstreams": [{"upstream": "canary", "weight": 0}]}]}`, map[string]int{"": 100}},
		{`{"rules": [{"upstreams": [{"upstream": "", "weight": 50}, {"upstream": "blue", "weight": 50}]}]}`, map[string]int{"blue": 50, "": 50}},
	}
	for _, tt := range tests {
		p := policytest.Build(t, trafficSplitKind, tt.config, splitEnv)
		for round := range 3 {
			got, _ := picks(t, p, policytest.Get("/"), 100, nil)
			for name, n := range tt.want {
				if got[name] != n {
					t.Errorf("%s round %d: %q got %d of 100, want %d (%v)", tt.config, round, name, got[name], n, got)
				}
			}
		}
	}
}

// A 10% canary gets one request in ten, not ten in a row.
func TestTrafficSplitIsSmooth(t *testing.T) {
	p := policytest.Build(t, trafficSplitKind, `{"rules": [{"upstreams": [{"upstream": "canary", "weight": 10}, {"upstream": "blue", "weight": 20}]}]}`, splitEnv)
	_, order := picks(t, p, policytest.Get("/"), 100, nil)
	for start := 0; start+10 <= len(order); start += 10 {
		window := map[string]int{}
		for _, name := range order[start : start+10] {
			window[name]++
		}
		if window["canary"] != 1 || window["blue"] != 2 {
			t.Fatalf("requests %d-%d went %v", start, start+9, order[start:start+10])
		}
	}
}

func TestTrafficSplitMatches(t *testing.T) {
	const config = `{"rules": [
		{"match": [{"header": "X-Canary", "values": ["1", "yes"]}, {"header": "X-Tenant"}], "upstreams": [{"upstream": "canary", "weight": 100}]},
		{"match": [{"header": "X-Color", "values": ["blue"]}], "upstreams": [{"upstream": "blue", "weight": 50}]}
	]}`
	p := policytest.Build(t, trafficSplitKind, config, splitEnv)
	tests := []struct {
		name  string
		req   *policytest.Request
		setup func(*policy.Context)
		want  map[string]int // per 10 requests
	}{
		{"all matches hold", policytest.Get("/", "X-Canary", "yes", "X-Tenant", "t1"), nil, map[string]int{"canary": 10}},
		{"a header missing", policytest.Get("/", "X-Canary", "yes"), nil, map[string]int{"": 10}},
		{"a value not listed", policytest.Get("/", "X-Canary", "no", "X-Tenant", "t1"), nil, map[string]int{"": 10}},
		{"values are exact", policytest.Get("/", "X-Canary", "YES", "X-Tenant", "t1"), nil, map[string]int{"": 10}},
		{"second rule", policytest.Get("/", "X-Color", "blue"), nil, map[string]int{"blue": 5, "": 5}},
		{"no rule", policytest.Get("/"), nil, map[string]int{"": 10}},
		// An earlier policy's edit counts.
		{"edited header", policytest.Get("/", "X-Canary", "no"), func(c *policy.Context) {
			c.SetRequestHeader("X-Canary", []byte("1"))
			c.SetRequestHeader("X-Tenant", []byte("t2"))
		}, map[string]int{"canary": 10}},
	}
	for _, tt := range tests {
		got, _ := picks(t, p, tt.req, 10, tt.setup)
		for name, n := range tt.want {
			if got[name] != n {
				t.Errorf("%s: %q got %d of 10, want %d (%v)", tt.name, name, got[name], n, got)
			}
		}
	}
}

func TestTrafficSplitConfigErrors(t *testing.T) {
	wantErrors(t, trafficSplitKind, `{}`, splitEnv, `rules: required`)
	wantErrors(t, trafficSplitKind, `{"rules": []}`, splitEnv, `rules: must not be empty`)
	wantErrors(t, trafficSplitKind, `{"rules": [
		{"upstreams": [{"upstream": "x", "weight": 10}, {"upstream": "canary", "weight": 95}, {"upstream": "canary", "weight": 0}]},
		{"upstreams": [{"weight": 1}]}
	]}`, splitEnv,
		`rules[0].upstreams[0].upstream: unknown upstream "x"`,
		`rules[0].upstreams[2].upstream: "canary" is listed twice`,
		`rules[0].upstreams: weights add up to 105: they are percentages, at most 100 in all`,
		`rules[1]: never used: rules[0] has no match and takes every request`)
	wantErrors(t, trafficSplitKind, `{"rules": [
		{"match": [{"values": ["1"]}, {"header": "Bad Name"}, {"header": "X-A", "value": "1"}], "upstreams": [{"upstream": "canary"}]},
		{"match": [], "upstreams": []},
		{"match": [{"header": "X-A"}], "upstreams": [{"upstream": "blue", "weight": 101}, {"upstream": 7, "weight": "5"}]}
	]}`, splitEnv,
		`rules[0].match[0].header: required`,
		`rules[0].match[1].header: "Bad Name" is not a valid header name`,
		`rules[0].match[2].value: unknown field`,
		`rules[0].upstreams[0].weight: required`,
		`rules[1].match: must not be empty: leave it out to match every request`,
		`rules[1].upstreams: must not be empty`,
		`rules[2].upstreams[0].weight: must be between 0 and 100`,
		`rules[2].upstreams[1].upstream: must be a string, got an integer`,
		`rules[2].upstreams[1].weight: must be an integer, got a string`)
}

func BenchmarkTrafficSplit(b *testing.B) {
	p := policytest.Build(b, trafficSplitKind, `{"rules": [
		{"match": [{"header": "X-Canary", "values": ["1"]}], "upstreams": [{"upstream": "canary", "weight": 100}]},
		{"upstreams": [{"upstream": "canary", "weight": 10}, {"upstream": "blue", "weight": 20}]}
	]}`, splitEnv)
	b.Run("weighted", func(b *testing.B) {
		benchRun(b, p, newBenchReq("GET", "/", "192.0.2.1", "Accept", "*/*"), nil)
	})
	b.Run("header", func(b *testing.B) {
		benchRun(b, p, newBenchReq("GET", "/", "192.0.2.1", "Accept", "*/*", "X-Canary", "1"), nil)
	})
}
