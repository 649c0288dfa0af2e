package deploy

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const diffBase = `
upstreams:
  - name: orders
    targets: [{address: "10.0.0.1:8080"}, {address: "10.0.0.2:8080", weight: 5}]
    timeouts: {read: 30s}
  - name: users
    targets: [{address: "users:80"}]
services:
  - name: orders
    upstream: orders
    routes:
      - name: list-orders
        paths: [/orders]
        methods: [GET]
        policies:
          - name: external
            config: {plugin: orders-check, config: {limits: {per: 1m}, "a.b": 1}}
      - name: get-order
        paths: ["/orders/{id}"]
  - name: users
    upstream: users
    routes:
      - name: users
        paths: [/users]
consumers:
  - name: app
    credentials:
      - {type: key, key: k-secret-1}
      - {type: basic, username: app, password: p-secret-1}
  - name: partner
    credentials:
      - {type: jwt, subject: p, secret: jwt-secret-1}
  - name: anonymous
global_policies:
  - name: request-id
  - name: rate-limit
    config: {limits: [{requests: 100, window: minute}]}
`

// diffConfig returns diffBase with a certificate from kp.
func diffConfig(t *testing.T, kp testKeyPair) *Config {
	t.Helper()
	c := mustDecode(t, diffBase)
	c.Certificates = []Certificate{{Name: "example", SNIs: []string{"api.example.com"}, Cert: kp.cert, Key: kp.key}}
	if err := c.Validate(testKinds); err != nil {
		t.Fatalf("diffBase is invalid:\n%v", err)
	}
	return c
}

// globalLimit returns the first limit of diffBase's global rate-limit.
func globalLimit(c *Config) map[string]any {
	return c.GlobalPolicies[1].Config["limits"].([]any)[0].(map[string]any)
}

var corsPolicy = Policy{Name: "cors", Config: map[string]any{"origins": []any{"https://app.example.com"}}}

func num(s string) json.Number { return json.Number(s) }

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []Change
	}{
		{"identical", func(*Config) {}, nil},
		{"upstream added", func(c *Config) {
			c.Upstreams = append(c.Upstreams, Upstream{Name: "billing", Targets: []Target{{Address: "b:1"}}})
		}, []Change{{Kind: "upstream", Name: "billing", Op: "added"}}},
		{"upstream removed", func(c *Config) { c.Upstreams = c.Upstreams[:1] },
			[]Change{{Kind: "upstream", Name: "users", Op: "removed"}}},
		{"upstream nested fields", func(c *Config) {
			c.Upstreams[0].Targets[1].Address = "10.0.0.3:8080"
			c.Upstreams[0].Timeouts.Read = Duration(60e9)
			c.Upstreams[0].Timeouts.Connect = Duration(1e9)
		}, []Change{{Kind: "upstream", Name: "orders", Op: "changed", Fields: []FieldChange{
			{Path: "targets[1].address", From: "10.0.0.2:8080", To: "10.0.0.3:8080"},
			{Path: "timeouts.connect", To: "1s"},
			{Path: "timeouts.read", From: "30s", To: "1m0s"},
		}}}},
		{"list grows", func(c *Config) {
			c.Upstreams[0].Targets = append(c.Upstreams[0].Targets, Target{Address: "c:1"})
		}, []Change{{Kind: "upstream", Name: "orders", Op: "changed", Fields: []FieldChange{
			{Path: "targets[2]", To: map[string]any{"address": "c:1"}},
		}}}},
		{"list shrinks", func(c *Config) { c.Upstreams[0].Targets = c.Upstreams[0].Targets[:1] },
			[]Change{{Kind: "upstream", Name: "orders", Op: "changed", Fields: []FieldChange{
				{Path: "targets[1]", From: map[string]any{"address": "10.0.0.2:8080", "weight": num("5")}},
			}}}},
		{"optional object added", func(c *Config) {
			c.Upstreams[1].Balancer = BalancerConsistentHash
			c.Upstreams[1].HashOn = &HashOn{Source: HashOnHeader, Name: "X-Tenant"}
		}, []Change{{Kind: "upstream", Name: "users", Op: "changed", Fields: []FieldChange{
			{Path: "balancer", To: "consistent-hash"},
			{Path: "hash_on", To: map[string]any{"source": "header", "name": "X-Tenant"}},
		}}}},
		{"service changed", func(c *Config) {
			c.Services[1].Upstream = "orders"
			c.Services[1].Policies = []Policy{corsPolicy}
		}, []Change{{Kind: "service", Name: "users", Op: "changed", Fields: []FieldChange{
			{Path: "policies", To: []any{map[string]any{
				"name":   "cors",
				"config": map[string]any{"origins": []any{"https://app.example.com"}},
			}}},
			{Path: "upstream", From: "users", To: "orders"},
		}}}},
		{"route changed, not its service", func(c *Config) { c.Services[0].Routes[0].Methods[0] = "POST" },
			[]Change{{Kind: "route", Name: "orders/list-orders", Op: "changed", Fields: []FieldChange{
				{Path: "methods[0]", From: "GET", To: "POST"},
			}}}},
		{"route policy config", func(c *Config) {
			cfg := c.Services[0].Routes[0].Policies[0].Config["config"].(map[string]any)
			cfg["limits"] = map[string]any{"per": "2m"}
			cfg["a.b"] = 2
		}, []Change{{Kind: "route", Name: "orders/list-orders", Op: "changed", Fields: []FieldChange{
			{Path: `policies[0].config.config["a.b"]`, From: num("1"), To: num("2")},
			{Path: "policies[0].config.config.limits.per", From: "1m", To: "2m"},
		}}}},
		{"route added and removed", func(c *Config) {
			c.Services[1].Routes = []Route{{Name: "user", Paths: []string{"/users/{id}"}}}
		}, []Change{
			{Kind: "route", Name: "users/user", Op: "added"},
			{Kind: "route", Name: "users/users", Op: "removed"},
		}},
		{"route moved to another service", func(c *Config) {
			c.Services[1].Routes = append(c.Services[1].Routes, c.Services[0].Routes[1])
			c.Services[0].Routes = c.Services[0].Routes[:1]
		}, []Change{
			{Kind: "route", Name: "orders/get-order", Op: "removed"},
			{Kind: "route", Name: "users/get-order", Op: "added"},
		}},
		{"consumer added and removed", func(c *Config) {
			c.Consumers[1] = Consumer{Name: "partner-2"}
		}, []Change{
			{Kind: "consumer", Name: "partner", Op: "removed"},
			{Kind: "consumer", Name: "partner-2", Op: "added"},
		}},
		{"consumer secrets", func(c *Config) {
			c.Consumers[0].Credentials[0].Key = "k-secret-2"
			c.Consumers[0].Credentials[1].Password = "p-secret-2"
			c.Consumers[0].Credentials[1].Username = "app2"
			c.Consumers[1].Credentials[0].Secret = "jwt-secret-2"
		}, []Change{
			{Kind: "consumer", Name: "app", Op: "changed", Fields: []FieldChange{
				{Path: "credentials[0].key", From: Redacted, To: Redacted},
				{Path: "credentials[1].password", From: Redacted, To: Redacted},
				{Path: "credentials[1].username", From: "app", To: "app2"},
			}},
			{Kind: "consumer", Name: "partner", Op: "changed", Fields: []FieldChange{
				{Path: "credentials[0].secret", From: Redacted, To: Redacted},
			}},
		}},
		{"credentials added whole", func(c *Config) {
			c.Consumers[0].Credentials = append(c.Consumers[0].Credentials, Credential{Type: "key", Key: "k-secret-3"})
			c.Consumers[2].Credentials = []Credential{{Type: "jwt", Subject: "a", Secret: "jwt-secret-3"}}
		}, []Change{
			{Kind: "consumer", Name: "anonymous", Op: "changed", Fields: []FieldChange{
				{Path: "credentials", To: []any{map[string]any{"type": "jwt", "subject": "a", "secret": Redacted}}},
			}},
			{Kind: "consumer", Name: "app", Op: "changed", Fields: []FieldChange{
				{Path: "credentials[2]", To: map[string]any{"type": "key", "key": Redacted}},
			}},
		}},
		{"credential type changed", func(c *Config) {
			c.Consumers[0].Credentials[0] = Credential{Type: "basic", Username: "u", Password: "p-secret-3"}
		}, []Change{{Kind: "consumer", Name: "app", Op: "changed", Fields: []FieldChange{
			{Path: "credentials[0].key", From: Redacted},
			{Path: "credentials[0].password", To: Redacted},
			{Path: "credentials[0].type", From: "key", To: "basic"},
			{Path: "credentials[0].username", To: "u"},
		}}}},
		{"certificate changed", func(c *Config) {
			kp := keyPairB()
			c.Certificates[0].Cert, c.Certificates[0].Key = kp.cert, kp.key
			c.Certificates[0].SNIs = append(c.Certificates[0].SNIs, "www.example.com")
		}, []Change{{Kind: "certificate", Name: "example", Op: "changed", Fields: []FieldChange{
			{Path: "cert", From: ChangedPEM, To: ChangedPEM},
			{Path: "key", From: Redacted, To: Redacted},
			{Path: "snis[1]", To: "www.example.com"},
		}}}},
		{"certificate added and removed", func(c *Config) { c.Certificates[0].Name = "example-2" },
			[]Change{
				{Kind: "certificate", Name: "example", Op: "removed"},
				{Kind: "certificate", Name: "example-2", Op: "added"},
			}},
		{"global policy changed", func(c *Config) { globalLimit(c)["requests"] = 200 },
			[]Change{{Kind: "global_policy", Name: "rate-limit[1]", Op: "changed", Fields: []FieldChange{
				{Path: "config.limits[0].requests", From: num("100"), To: num("200")},
			}}}},
		{"global policy inserted", func(c *Config) {
			c.GlobalPolicies = slices.Insert(c.GlobalPolicies, 0, corsPolicy)
		}, []Change{
			{Kind: "global_policy", Name: "cors[0]", Op: "added"},
			{Kind: "global_policy", Name: "request-id[0]", Op: "removed"},
			{Kind: "global_policy", Name: "rate-limit[1]", Op: "removed"},
			{Kind: "global_policy", Name: "request-id[1]", Op: "added"},
			{Kind: "global_policy", Name: "rate-limit[2]", Op: "added"},
		}},
		// By position, not by name.
		{"global policies ordered by position", func(c *Config) {
			for _, name := range []string{
				"key-auth", "basic-auth", "jwt-auth", "ip-restriction", "request-size-limit", "cors",
				"request-headers", "response-headers", "proxy-rewrite", "traffic-split", "external",
			} {
				c.GlobalPolicies = append(c.GlobalPolicies, Policy{Name: name})
			}
		}, []Change{
			{Kind: "global_policy", Name: "key-auth[2]", Op: "added"},
			{Kind: "global_policy", Name: "basic-auth[3]", Op: "added"},
			{Kind: "global_policy", Name: "jwt-auth[4]", Op: "added"},
			{Kind: "global_policy", Name: "ip-restriction[5]", Op: "added"},
			{Kind: "global_policy", Name: "request-size-limit[6]", Op: "added"},
			{Kind: "global_policy", Name: "cors[7]", Op: "added"},
			{Kind: "global_policy", Name: "request-headers[8]", Op: "added"},
			{Kind: "global_policy", Name: "response-headers[9]", Op: "added"},
			{Kind: "global_policy", Name: "proxy-rewrite[10]", Op: "added"},
			{Kind: "global_policy", Name: "traffic-split[11]", Op: "added"},
			{Kind: "global_policy", Name: "external[12]", Op: "added"},
		}},
		{"every kind, in kind order", func(c *Config) {
			c.GlobalPolicies = c.GlobalPolicies[:1]
			c.Certificates = nil
			c.Consumers = c.Consumers[:2]
			c.Services[0].Routes = c.Services[0].Routes[:1]
			c.Services[0].Upstream = "users"
			c.Upstreams[1].Retries = 1
		}, []Change{
			{Kind: "upstream", Name: "users", Op: "changed", Fields: []FieldChange{{Path: "retries", To: num("1")}}},
			{Kind: "service", Name: "orders", Op: "changed", Fields: []FieldChange{{Path: "upstream", From: "orders", To: "users"}}},
			{Kind: "route", Name: "orders/get-order", Op: "removed"},
			{Kind: "consumer", Name: "anonymous", Op: "removed"},
			{Kind: "certificate", Name: "example", Op: "removed"},
			{Kind: "global_policy", Name: "rate-limit[1]", Op: "removed"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := diffConfig(t, keyPairA()), diffConfig(t, keyPairA())
			tt.change(to)
			got := Diff(from, to)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff:\n got %s\nwant %s", mustJSON(t, got), mustJSON(t, tt.want))
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDiffNil(t *testing.T) {
	c := diffConfig(t, keyPairA())
	added := Diff(nil, c)
	removed := Diff(c, nil)
	if len(added) != 2+2+3+3+1+2 || len(removed) != len(added) {
		t.Fatalf("Diff(nil, c) = %d changes, Diff(c, nil) = %d, want 13", len(added), len(removed))
	}
	for i := range added {
		if added[i].Op != OpAdded || removed[i].Op != OpRemoved || added[i].Name != removed[i].Name {
			t.Errorf("change %d: %v and %v", i, added[i], removed[i])
		}
	}
	if got := Diff(&Config{}, nil); got != nil {
		t.Errorf("Diff of empty configurations = %v", got)
	}
}

// TestDiffNoSecrets changes, adds and removes every kind of secret and
// looks for them in every form of the diff.
func TestDiffNoSecrets(t *testing.T) {
	from, to := diffConfig(t, keyPairA()), diffConfig(t, keyPairB())
	to.Consumers[0].Credentials = []Credential{
		{Type: "basic", Username: "app", Password: "p-secret-2"},
		{Type: "key", Key: "k-secret-2"},
		{Type: "jwt", Subject: "s", Secret: "jwt-secret-2"},
	}
	to.Consumers[1].Credentials = nil
	to.Consumers[2].Credentials = []Credential{{Type: "jwt", Subject: "t", Secret: "jwt-secret-3"}}
	secrets := []string{"secret-1", "secret-2", "secret-3", "PRIVATE KEY", "CERTIFICATE"}

	for _, pair := range [][2]*Config{{from, to}, {to, from}} {
		changes := Diff(pair[0], pair[1])
		if len(changes) != 4 {
			t.Errorf("Diff = %v, want 3 consumers and a certificate changed", changes)
		}
		var text strings.Builder
		text.WriteString(mustJSON(t, changes))
		for _, c := range changes {
			text.WriteString(c.String() + "\n")
		}
		for _, s := range secrets {
			if strings.Contains(text.String(), s) {
				t.Errorf("diff shows %q:\n%s", s, text.String())
			}
		}
	}
}

func TestDiffUnencodable(t *testing.T) {
	from, to := diffConfig(t, keyPairA()), diffConfig(t, keyPairA())
	globalLimit(to)["requests"] = math.NaN()
	got := Diff(from, to)
	if len(got) != 1 || got[0].Name != "rate-limit[1]" || got[0].Op != OpChanged {
		t.Fatalf("Diff = %v, want rate-limit[1] changed", got)
	}
	if to := got[0].Fields[0].To; !strings.Contains(to.(string), "cannot encode") {
		t.Errorf("To = %v", to)
	}
}

func TestChangeString(t *testing.T) {
	tests := []struct {
		change Change
		want   string
	}{
		{Change{Kind: "upstream", Name: "billing", Op: "added"}, "+ upstream billing"},
		{Change{Kind: "consumer", Name: "partner", Op: "removed"}, "- consumer partner"},
		{Change{Kind: "route", Name: "orders/list-orders", Op: "changed", Fields: []FieldChange{
			{Path: "methods[0]", From: "GET", To: "POST"},
		}}, `~ route orders/list-orders: methods[0] "GET" -> "POST"`},
		{Change{Kind: "upstream", Name: "orders", Op: "changed", Fields: []FieldChange{
			{Path: "targets[2]", To: map[string]any{"weight": num("2"), "address": "c:1"}},
			{Path: "retries", From: num("1")},
			{Path: "timeouts.read", From: "30s", To: "1m0s"},
		}}, `~ upstream orders: targets[2] null -> {"address":"c:1","weight":2}; retries 1 -> null; timeouts.read "30s" -> "1m0s"`},
		{Change{Kind: "route", Name: "s/r", Op: "changed", Fields: []FieldChange{
			{Path: "rewrite", From: "/a?x=<y>&z", To: "/b"},
		}}, `~ route s/r: rewrite "/a?x=<y>&z" -> "/b"`},
		{Change{Kind: "consumer", Name: "app", Op: "changed", Fields: []FieldChange{
			{Path: "credentials[0].key", From: Redacted, To: Redacted},
			{Path: "credentials[1].password", To: Redacted},
			{Path: "credentials[2]", To: map[string]any{"type": "key", "key": Redacted}},
		}}, `~ consumer app: credentials[0].key (redacted); credentials[1].password (redacted); credentials[2] null -> {"key":"(redacted)","type":"key"}`},
		{Change{Kind: "certificate", Name: "example", Op: "changed", Fields: []FieldChange{
			{Path: "cert", From: ChangedPEM, To: ChangedPEM},
			{Path: "key", From: Redacted, To: Redacted},
		}}, `~ certificate example: cert (changed); key (redacted)`},
	}
	for _, tt := range tests {
		if got := tt.change.String(); got != tt.want {
			t.Errorf("String:\n got %s\nwant %s", got, tt.want)
		}
	}
}

// TestChangeStringRedactsUnscrubbed shows that String hides secret fields
// even in a Change that did not come from Diff.
func TestChangeStringRedactsUnscrubbed(t *testing.T) {
	c := Change{Kind: "consumer", Name: "app", Op: "changed", Fields: []FieldChange{
		{Path: "credentials[0].secret", From: "jwt-secret-1", To: "jwt-secret-2"},
	}}
	if got, want := c.String(), "~ consumer app: credentials[0].secret (redacted)"; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
}

// TestDiffJSON pins the JSON form of a change served by the admin API.
func TestDiffJSON(t *testing.T) {
	from, to := diffConfig(t, keyPairA()), diffConfig(t, keyPairA())
	to.Upstreams[0].Targets[0].Weight = 3
	to.Upstreams[1].Retries = 2
	to.Upstreams[0].Targets = to.Upstreams[0].Targets[:1]
	got := mustJSON(t, Diff(from, to))
	want := `[{"kind":"upstream","name":"orders","op":"changed","fields":[` +
		`{"path":"targets[0].weight","to":3},` +
		`{"path":"targets[1]","from":{"address":"10.0.0.2:8080","weight":5}}]},` +
		`{"kind":"upstream","name":"users","op":"changed","fields":[{"path":"retries","to":2}]}]`
	if got != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
}
