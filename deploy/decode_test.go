package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// decodeFull decodes testdata/full.yaml with a generated certificate.
func decodeFull(t *testing.T) *Config {
	t.Helper()
	c, err := DecodeFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kp := keyPairA()
	c.Certificates[0].Cert, c.Certificates[0].Key = kp.cert, kp.key
	return c
}

func TestFullExample(t *testing.T) {
	c := decodeFull(t)
	if err := c.Validate(testKinds); err != nil {
		t.Fatalf("Validate() =\n%v", err)
	}
	// Every field of every type must be set somewhere, so that the example
	// (and the fuzzers seeded with it) keep up with Config.
	set := make(map[string]bool)
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if !v.Field(i).IsZero() {
					set[v.Type().Name()+"."+v.Type().Field(i).Name] = true
				}
				walk(v.Field(i))
			}
		}
	}
	walk(reflect.ValueOf(c).Elem())
	var missing []string
	var all func(t reflect.Type)
	seen := make(map[reflect.Type]bool)
	all = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			if name := t.Name() + "." + t.Field(i).Name; !set[name] {
				missing = append(missing, name)
			}
			all(t.Field(i).Type)
		}
	}
	all(reflect.TypeFor[Config]())
	if len(missing) > 0 {
		t.Errorf("testdata/full.yaml leaves out %s", strings.Join(missing, ", "))
	}
}

func TestDecodeValues(t *testing.T) {
	c := decodeFull(t)
	u := c.Upstreams[0]
	if got, want := u.Timeouts, (Timeouts{Connect: Duration(2 * time.Second), Read: Duration(30 * time.Second), Write: Duration(90 * time.Second)}); got != want {
		t.Errorf("timeouts = %+v, want %+v", got, want)
	}
	if got := u.HealthCheck.Timeout.Std(); got != 1500*time.Millisecond {
		t.Errorf("health_check.timeout = %v, want 1.5s", got)
	}
	if got := u.Targets[2].Address; got != "[fd00::3]:8080" {
		t.Errorf("targets[2].address = %q", got)
	}
	r := c.Services[0].Routes[1]
	if !slices.Equal(r.Paths, []string{"/orders/{id}", "/v1/orders/{id}/"}) || r.Priority != 10 || r.Headers[1].Values != nil {
		t.Errorf("route = %+v", r)
	}
	wantLimits := []any{
		map[string]any{"requests": 100, "window": "minute"},
		map[string]any{"requests": 10, "window": "1s"},
	}
	if got := c.Services[0].Routes[0].Policies[1].Config["limits"]; !reflect.DeepEqual(got, wantLimits) {
		t.Errorf("rate-limit limits = %#v, want %#v", got, wantLimits)
	}
	// The plugin's own config, which no kind looks into, keeps every value.
	wantConfig := map[string]any{
		"requests": 100,
		"per":      "1m",
		"burst":    1.5,
		"by":       []any{"consumer", "client-ip"},
		"exempt":   nil,
		"enabled":  true,
		"headers":  map[string]any{"X-RateLimit-Limit": true},
		"a.b":      map[string]any{"z": []any{}, "y": map[string]any{}},
	}
	if got := c.Services[0].Routes[0].Policies[2].Config["config"]; !reflect.DeepEqual(got, wantConfig) {
		t.Errorf("external policy config = %#v, want %#v", got, wantConfig)
	}
}

func TestDecodeAnyValues(t *testing.T) {
	c, err := Decode([]byte(`
global_policies:
  - name: p
    config:
      int: 42
      hex: 0x10
      negative: -7
      big: 10000000000000000000
      float: 2.5
      exp: 1e3
      zero: -0.0
      string: text
      quoted: "42"
      date: 2024-01-31
      bool: false
      nothing: ~
      empty: {}
      list: [1, [2], {a: b}]
      "with.dot": 1
      200: ok
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"int":      42,
		"hex":      16,
		"negative": -7,
		"big":      1e19,
		"float":    2.5,
		"exp":      1000.0,
		"zero":     0.0,
		"string":   "text",
		"quoted":   "42",
		"date":     "2024-01-31",
		"bool":     false,
		"nothing":  nil,
		"empty":    map[string]any{},
		"list":     []any{1, []any{2}, map[string]any{"a": "b"}},
		"with.dot": 1,
		"200":      "ok",
	}
	if got := c.GlobalPolicies[0].Config; !reflect.DeepEqual(got, want) {
		t.Errorf("config = %#v\nwant %#v", got, want)
	}
}

func TestDecodeNulls(t *testing.T) {
	c, err := Decode([]byte(`
upstreams:
  - name: u
    targets: []
    hash_on: null
    health_check: ~
    timeouts:
services: ~
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Upstreams: []Upstream{{Name: "u"}}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Decode = %+v, want %+v", c, want)
	}
}

func TestDecodeEmptyMapping(t *testing.T) {
	for _, in := range []string{"{}", "{}\n# nothing else\n"} {
		c, err := Decode([]byte(in))
		if err != nil || !reflect.DeepEqual(c, &Config{}) {
			t.Errorf("Decode(%q) = %+v, %v; want an empty Config", in, c, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", []string{"configuration is empty"}},
		{"blank", "  \n\n", []string{"configuration is empty"}},
		{"comments only", "# nothing\n", []string{"configuration is empty"}},
		{"empty document", "---\n", []string{"configuration is empty"}},
		{"null document", "null\n", []string{"configuration is empty"}},
		{"several documents", "services: []\n---\nservices: []\n", []string{
			"only one YAML document is allowed, found another (line 2)",
		}},
		{"syntax error", "services: [\n", []string{
			"invalid YAML: line 1: did not find expected node content",
		}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping, got a list (line 1)"}},
		{"scalar", "services\n", []string{"must be a mapping, got a string (line 1)"}},
		{"unknown top-level field", "service: []\n", []string{"service: unknown field (line 1)"}},
		{"unknown nested field", `
services:
  - name: s
    upstream: u
    routes:
      - name: a
        paths: [/a]
      - name: r
        pathz: [/x]
`, []string{"services[0].routes[1].pathz: unknown field (line 9)"}},
		{"fields are case-sensitive", "Services: []\n", []string{"Services: unknown field (line 1)"}},
		{"string for int", `
services:
  - routes:
      - priority: high
`, []string{"services[0].routes[0].priority: must be an integer, got a string (line 4)"}},
		{"quoted int", `{"services": [{"routes": [{"priority": "1"}]}]}`, []string{
			"services[0].routes[0].priority: must be an integer, got a string (line 1)",
		}},
		{"float for int", "upstreams: [{retries: 1.0}]\n", []string{
			"upstreams[0].retries: must be an integer, got a number (line 1)",
		}},
		{"int overflow", "upstreams: [{retries: 99999999999999999999}]\n", []string{
			"upstreams[0].retries: must be an integer, got a number (line 1)",
		}},
		{"int beyond int64", "upstreams: [{retries: 18446744073709551615}]\n", []string{
			"upstreams[0].retries: must be an integer that fits in 64 bits (line 1)",
		}},
		{"int for string", "services: [{name: 7}]\n", []string{
			"services[0].name: must be a string, got an integer (line 1)",
		}},
		{"bool for string", "services: [{name: true}]\n", []string{
			"services[0].name: must be a string, got a boolean (line 1)",
		}},
		{"yes is not a boolean", "services: [{routes: [{strip_prefix: yes}]}]\n", []string{
			"services[0].routes[0].strip_prefix: must be a boolean, got a string (line 1)",
		}},
		{"mapping for list", "services:\n  name: s\n", []string{
			"services: must be a list, got a mapping (line 2)",
		}},
		{"string for list", "services: [{routes: [{paths: /x}]}]\n", []string{
			"services[0].routes[0].paths: must be a list, got a string (line 1)",
		}},
		{"list for mapping", "upstreams: [{hash_on: [header]}]\n", []string{
			"upstreams[0].hash_on: must be a mapping, got a list (line 1)",
		}},
		{"list for string", "services: [{name: [a]}]\n", []string{
			"services[0].name: must be a string, got a list (line 1)",
		}},
		{"list for policy config", "global_policies: [{name: p, config: [a]}]\n", []string{
			"global_policies[0].config: must be a mapping, got a list (line 1)",
		}},
		{"binary for string", "services: [{name: !!binary aGk=}]\n", []string{
			"services[0].name: must be a string, got binary data (line 1)",
		}},
		{"custom tag", "services: [{name: !thing x}]\n", []string{
			"services[0].name: must be a string, got a value tagged !thing (line 1)",
		}},
		{"durations", `
upstreams:
  - timeouts:
      connect: 5
      read: soon
      write: -1s
    passive:
      eject_for: [1s]
`, []string{
			`upstreams[0].timeouts.connect: must be a duration string such as "5s", got an integer (line 4)`,
			`upstreams[0].timeouts.read: must be a duration such as "5s" or "250ms", got "soon" (line 5)`,
			`upstreams[0].timeouts.write: must not be negative, got "-1s" (line 6)`,
			`upstreams[0].passive.eject_for: must be a duration string such as "5s", got a list (line 8)`,
		}},
		{"duplicate keys", `
services:
  - name: a
    name: b
    routes:
      - paths: [/a]
        paths: [/b]
services: []
`, []string{
			"services[0].name: duplicate key, first at line 3 (line 4)",
			"services[0].routes[0].paths: duplicate key, first at line 6 (line 7)",
			"services: duplicate key, first at line 2 (line 8)",
		}},
		{"duplicate keys in JSON", `{"upstreams": [], "upstreams": []}`, []string{
			"upstreams: duplicate key, first at line 1 (line 1)",
		}},
		{"duplicate keys in policy config", `
global_policies:
  - name: p
    config:
      a: 1
      nested: {b: 1, "b": 2}
      a: 2
`, []string{
			"global_policies[0].config.nested.b: duplicate key, first at line 6 (line 6)",
			"global_policies[0].config.a: duplicate key, first at line 5 (line 7)",
		}},
		{"aliases", `
upstreams:
  - &u
    name: u
    targets: [{address: "a:1"}]
  - *u
global_policies:
  - name: p
    config: {a: &x 1, b: *x}
`, []string{
			"upstreams[1]: YAML aliases are not supported (line 6)",
			"global_policies[0].config.b: YAML aliases are not supported (line 9)",
		}},
		{"merge keys", `
global_policies:
  - name: p
    config:
      <<: {a: 1}
`, []string{"global_policies[0].config: YAML merge keys (<<) are not supported (line 5)"}},
		{"non-string keys", `
global_policies:
  - name: p
    config:
      [a]: 1
      ~: 2
`, []string{
			"global_policies[0].config: keys must be strings, got a list (line 5)",
			"global_policies[0].config: keys must be strings, got null (line 6)",
		}},
		{"long key", "global_policies: [{name: p, config: {" + strings.Repeat("k", 129) + ": 1}}]\n", []string{
			`global_policies[0].config.` + strings.Repeat("k", 129) + `: keys must be at most 128 characters (line 1)`,
		}},
		{"non-finite numbers", "global_policies: [{name: p, config: {a: .inf, b: .nan, 'x y': -.inf}}]\n", []string{
			"global_policies[0].config.a: must be a finite number (line 1)",
			"global_policies[0].config.b: must be a finite number (line 1)",
			`global_policies[0].config["x y"]: must be a finite number (line 1)`,
		}},
		// The YAML parser refuses invalid UTF-8, and its escapes only make
		// valid UTF-8, so strings need no check of their own.
		{"invalid UTF-8", "services: [{name: \"\xff\"}]\n", []string{
			"invalid YAML: invalid leading UTF-8 octet",
		}},
		{"unsupported tag in policy config", "global_policies: [{name: p, config: {a: !!binary aGk=}}]\n", []string{
			"global_policies[0].config.a: unsupported YAML tag !!binary (line 1)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode([]byte(tc.in))
			if c != nil {
				t.Errorf("Decode returned a Config with errors")
			}
			if got := errorLines(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("Decode errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestDecodeTestdata(t *testing.T) {
	cases := []struct {
		file         string
		decodeErrors []string
		validate     []string
	}{
		{"invalid-shape.yaml", []string{
			"upstreams[0].targets[0].weight: must be an integer, got a string (line 6)",
			"upstreams[0].retries: must be an integer, got a number (line 7)",
			`upstreams[0].timeouts.connect: must be a duration string such as "5s", got an integer (line 9)`,
			`upstreams[0].timeouts.read: must be a duration such as "5s" or "250ms", got "soon" (line 10)`,
			"upstreams[0].balancer: duplicate key, first at line 11 (line 12)",
			"services: must be a list, got a mapping (line 14)",
			"consumers[0].credentialz: unknown field (line 17)",
			"global_policies[0].config: must be a mapping, got a list (line 20)",
		}, nil},
		{"invalid-types.json", []string{
			"upstreams: must be a list, got a mapping (line 2)",
			"services[0].name: must be a string, got an integer (line 5)",
			"services[0].routes[0].paths: must be a list, got a string (line 7)",
			"services[0].routes[0].priority: must be an integer, got a string (line 7)",
			"services[0].routes[0].strip_prefix: must be a boolean, got a string (line 7)",
			"certificates[0].name: duplicate key, first at line 10 (line 10)",
		}, nil},
		{"invalid-rules.yaml", nil, []string{
			`upstreams[0].targets[0].address: must be host:port, such as "10.0.0.1:8080" or "orders.internal:80"`,
			"upstreams[0].hash_on: required with balancer consistent-hash",
			`services[0].upstream: no upstream is named "order"`,
			"services[0].routes[0].hosts[0]: " + hostRule,
			`services[0].routes[0].paths[1]: must start with "/"`,
			"services[0].routes[0].methods[0]: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE (upper case)",
			`services[0].routes[0].strip_prefix: only allowed when every path ends with "/*"`,
			`services[1].name: "orders" is already the name of services[0]`,
			`services[1].routes[0].name: "list" is already the name of services[0].routes[0]`,
			"consumers[0].credentials[0].key: required with type key",
			"consumers[0].credentials[0].password: not allowed with type key",
			"certificates[0].snis[0]: " + hostRule,
			"certificates[0].cert: must be a PEM certificate chain",
			`global_policies[0].name: must be 1 to 63 lower-case letters, digits or "-", starting with a letter`,
			`global_policies[1].name: unknown policy "request-ids"`,
			// The rate limit's window is the kind's to refuse: policy/catalog's
			// tests check the kinds through Validate.
			`global_policies[3].name: policy "rate-limit" is already set at global_policies[2]`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Decode(data)
			if got := errorLines(t, err); !slices.Equal(got, tc.decodeErrors) {
				t.Fatalf("Decode errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.decodeErrors, "\n"))
			}
			if err != nil {
				return
			}
			if got := errorLines(t, c.Validate(testKinds)); !slices.Equal(got, tc.validate) {
				t.Errorf("Validate errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.validate, "\n"))
			}
		})
	}
}

func TestDecodeYAMLAndJSON(t *testing.T) {
	yamlIn := `
upstreams:
  - name: u
    targets:
      - address: "a:1"
        weight: 5
    timeouts: {connect: 1s}
    health_check: {path: /h, statuses: [200]}
services:
  - name: s
    upstream: u
    routes:
      - name: r
        paths: ["/x/{id}"]
        strip_prefix: false
        priority: -1
        policies:
          - name: p
            config: {n: 1, f: 0.5, l: [true, null], m: {k: v}}
`
	jsonIn := `{
  "services": [{"routes": [{"policies": [{"config": {"m": {"k": "v"}, "l": [true, null], "f": 0.5, "n": 1}, "name": "p"}],
    "priority": -1, "strip_prefix": false, "paths": ["/x/{id}"], "name": "r"}], "upstream": "u", "name": "s"}],
  "upstreams": [{"health_check": {"statuses": [200], "path": "/h"}, "timeouts": {"connect": "1s"},
    "targets": [{"weight": 5, "address": "a:1"}], "name": "u"}]
}`
	fromYAML, err := Decode([]byte(yamlIn))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := Decode([]byte(jsonIn))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromYAML, fromJSON) {
		t.Errorf("YAML and JSON decode differently:\n%+v\n%+v", fromYAML, fromJSON)
	}
}

func TestDecodeFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := DecodeFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("DecodeFile(missing) error = %v, want one naming the file", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("servicez: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := DecodeFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "servicez: unknown field (line 1)") {
		t.Errorf("DecodeFile(bad) error = %v", err)
	}
	if got := errorLines(t, err); len(got) != 1 {
		t.Errorf("DecodeFile(bad) error holds %d Errors, want 1", len(got))
	}
}

// TestDocumentationExample keeps the complete example of the user
// documentation valid; its certificate is elided there.
func TestDocumentationExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(doc), "## Complete example")
	if !ok {
		t.Fatal(`docs/configuration.md has no "## Complete example"`)
	}
	_, example, _ = strings.Cut(example, "```yaml\n")
	example, _, _ = strings.Cut(example, "```")
	c := mustDecode(t, example)
	kp := keyPairA()
	for i := range c.Certificates {
		c.Certificates[i].Cert, c.Certificates[i].Key = kp.cert, kp.key
	}
	if err := c.Validate(testKinds); err != nil {
		t.Errorf("the documented example is invalid:\n%v", err)
	}
}
