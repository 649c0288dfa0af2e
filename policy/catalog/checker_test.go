package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/deploy"
)

// TestChecker checks the kinds' own rules through deploy's validation, as
// the admin node and the gateway run them: errors at their full paths,
// and references to the configuration's upstreams and consumers resolved.
func TestChecker(t *testing.T) {
	base := func() *deploy.Config {
		return &deploy.Config{
			Upstreams: []deploy.Upstream{{Name: "orders", Targets: []deploy.Target{{Address: "10.0.0.1:8080"}}}},
			Services: []deploy.Service{{Name: "orders", Upstream: "orders", Routes: []deploy.Route{
				{Name: "list", Paths: []string{"/orders"}},
				{Name: "get", Paths: []string{"/orders/{id}"}},
			}}},
			Consumers:      []deploy.Consumer{{Name: "app", Credentials: []deploy.Credential{{Type: deploy.CredentialKey, Key: "key-one"}}}},
			GlobalPolicies: []deploy.Policy{{Name: "request-id"}},
		}
	}
	route := func(c *deploy.Config) *deploy.Route { return &c.Services[0].Routes[0] }
	cases := []struct {
		name   string
		mutate func(*deploy.Config)
		want   []string
	}{
		{"valid", func(c *deploy.Config) {
			limit := deploy.Policy{Name: "rate-limit", Config: map[string]any{"limits": []any{map[string]any{"requests": 10, "window": "minute"}}}}
			route(c).Policies = []deploy.Policy{limit, {Name: "cors", Config: map[string]any{"origins": []any{"https://app.example.com"}}}}
			c.Consumers[0].Policies = []deploy.Policy{limit}
		}, nil},
		{"unknown kind", func(c *deploy.Config) {
			route(c).Policies = []deploy.Policy{{Name: "rate-limits"}}
		}, []string{`services[0].routes[0].policies[0].name: unknown policy "rate-limits"`}},
		{"policy config", func(c *deploy.Config) {
			route(c).Policies = []deploy.Policy{{Name: "rate-limit"}}
			c.Services[0].Routes[1].Policies = []deploy.Policy{{Name: "rate-limit", Config: map[string]any{
				"limits": []any{map[string]any{"requests": 0, "window": "fortnight"}},
				"per":    "1m",
			}}}
			c.Services[0].Policies = []deploy.Policy{{Name: "external", Config: map[string]any{"config": "anything"}}}
			c.Consumers[0].Policies = []deploy.Policy{{Name: "rate-limit", Config: map[string]any{"limits": "lots"}}}
			c.GlobalPolicies = append(c.GlobalPolicies, deploy.Policy{Name: "cors", Config: map[string]any{}})
		}, []string{
			"services[0].routes[0].policies[0].config.limits: required",
			"services[0].routes[1].policies[0].config.limits[0].requests: must be between 1 and 2147483647",
			`services[0].routes[1].policies[0].config.limits[0].window: must be "second", "minute", "hour" or a whole number of seconds from 1s to 24h such as "10s"`,
			"services[0].routes[1].policies[0].config.per: unknown field",
			"services[0].policies[0].config.plugin: required",
			"consumers[0].policies[0].config.limits: must be a list, got a string",
			"global_policies[1].config.origins: required",
		}},
		{"policy config refers to the configuration", func(c *deploy.Config) {
			c.Upstreams = append(c.Upstreams, deploy.Upstream{Name: "orders-v2", Targets: []deploy.Target{{Address: "10.0.0.2:8080"}}})
			route(c).Policies = []deploy.Policy{{Name: "traffic-split", Config: map[string]any{"rules": []any{map[string]any{
				"upstreams": []any{
					map[string]any{"upstream": "orders-v2", "weight": 10},
					map[string]any{"upstream": "orders-v3", "weight": 10},
					map[string]any{"weight": 80},
				},
			}}}}}
			c.Consumers = append(c.Consumers, deploy.Consumer{Name: "guest"})
			c.Services[0].Policies = []deploy.Policy{{Name: "key-auth", Config: map[string]any{"anonymous": "guest"}}}
			c.GlobalPolicies = append(c.GlobalPolicies, deploy.Policy{Name: "basic-auth", Config: map[string]any{"anonymous": "nobody"}})
		}, []string{
			`services[0].routes[0].policies[0].config.rules[0].upstreams[1].upstream: unknown upstream "orders-v3"`,
			`global_policies[1].config.anonymous: unknown consumer "nobody"`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(c)
			var got []string
			if err := c.Validate(Checker{}); err != nil {
				var es deploy.Errors
				if !errors.As(err, &es) {
					t.Fatalf("Validate() = %T %v, want deploy.Errors", err, err)
				}
				for _, e := range es {
					got = append(got, e.Error())
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate() errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestCheckerKnowsEveryKind keeps Known in step with Lookup.
func TestCheckerKnowsEveryKind(t *testing.T) {
	pc := Checker{}.PolicyChecker(&deploy.Config{})
	for _, k := range Kinds() {
		if !pc.Known(k.Name) {
			t.Errorf("Known(%q) = false", k.Name)
		}
	}
	if pc.Known("nope") {
		t.Error(`Known("nope") = true`)
	}
}

// FuzzChecker checks that the kinds judge a configuration by what its
// canonical encoding holds, as a gateway receiving it would: numbers,
// durations and odd keys read the same after the round trip, and nothing
// panics.
func FuzzChecker(f *testing.F) {
	for _, s := range []string{
		"global_policies: [{name: external, config: {plugin: p, config: {a: 1e19, b: -0.0, c: 0x10, d: 2024-01-01, \"\\x85\": \"\\ufffe\"}}}]",
		"global_policies: [{name: rate-limit, config: {limits: [{requests: 1.0, window: 90s}, {requests: 2147483648, window: minute}], key: header}}, {name: rate-limit}]",
		"services: [{name: s, upstream: u, routes: [{name: r, paths: [/], policies: [{name: cors, config: {origins: ['*.example.com'], max_age: 0s}}, {name: traffic-split, config: {rules: [{upstreams: [{upstream: u, weight: 100}]}]}}]}]}]\nupstreams: [{name: u, targets: [{address: 'a:1'}]}]",
		"consumers: [{name: c, credentials: [{type: jwt, subject: s, secret: x}]}]\nglobal_policies: [{name: jwt-auth, config: {anonymous: c, algorithms: [HS256]}}, {name: request-size-limit, config: {max_bytes: 1.5}}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := deploy.Decode(data)
		if err != nil {
			return
		}
		verr := c.Validate(Checker{})
		canonical, err := c.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := deploy.DecodeCanonical(canonical)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := fmt.Sprint(verr), fmt.Sprint(c2.Validate(Checker{})); a != b {
			t.Fatalf("validation differs after the canonical round trip:\n%s\n---\n%s", a, b)
		}
	})
}
