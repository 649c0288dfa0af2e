package placeholder

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/fieldpath"
)

// decode decodes a configuration written for a test.
func decode(t *testing.T, yaml string) *deploy.Config {
	t.Helper()
	cfg, err := deploy.Decode([]byte(yaml))
	if err != nil {
		t.Fatalf("decode:\n%v", err)
	}
	return cfg
}

func canonical(t *testing.T, cfg *deploy.Config) string {
	t.Helper()
	b, err := cfg.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func errorLines(t *testing.T, err error) []string {
	t.Helper()
	var es deploy.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want deploy.Errors: %v", err, err)
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return lines
}

// template has placeholders in every kind of field that can hold them.
const template = `
upstreams:
  - name: orders
    targets:
      - address: ${ORDERS_HOST}:8080
      - address: ${ORDERS_HOST_2:-orders-2.internal}:${ORDERS_PORT:-80}
    hash_on: {source: header, name: "${TENANT_HEADER:-X-Tenant}"}
    balancer: consistent-hash
    timeouts: {connect: 2s}
    health_check: {path: "${HEALTH_PATH}"}
services:
  - name: orders
    upstream: orders
    routes:
      - name: orders-api
        hosts: ["${API_HOST}", "*.${API_DOMAIN}"]
        paths: ["/api/${API_VERSION:-v1}/*", "/orders/{id}"]
        methods: [GET]
        headers:
          - name: X-Env
            values: ["${ENV_NAME}", "$${LITERAL}"]
        rewrite: /internal/{id}
        policies:
          - name: rate-limit
            config:
              limits: [{requests: 100, window: minute}]
              redis:
                address: ${REDIS_ADDR}
                password: ${secret:REDIS_PASSWORD}
                timeout: ${REDIS_TIMEOUT:-100ms}
consumers:
  - name: app
    credentials:
      - type: basic
        username: ${APP_USER}
        password: ${secret:APP_PASSWORD}
      - type: key
        key: ${secret:APP_KEY}
certificates:
  - name: api
    snis: ["${API_HOST}"]
    cert: ${API_CERT}
    key: ${secret:API_CERT_KEY}
global_policies:
  - name: http-log
    config:
      endpoint: https://${LOG_HOST}/ingest
      headers:
        Authorization: Bearer ${secret:LOG_TOKEN}
`

func TestFind(t *testing.T) {
	refs, err := Find(decode(t, template))
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{Path: "upstreams[0].targets[0].address", Name: "ORDERS_HOST"},
		{Path: "upstreams[0].targets[1].address", Name: "ORDERS_HOST_2", Default: "orders-2.internal", HasDefault: true},
		{Path: "upstreams[0].targets[1].address", Name: "ORDERS_PORT", Default: "80", HasDefault: true},
		{Path: "upstreams[0].hash_on.name", Name: "TENANT_HEADER", Default: "X-Tenant", HasDefault: true},
		{Path: "upstreams[0].health_check.path", Name: "HEALTH_PATH"},
		{Path: "services[0].routes[0].hosts[0]", Name: "API_HOST"},
		{Path: "services[0].routes[0].hosts[1]", Name: "API_DOMAIN"},
		{Path: "services[0].routes[0].paths[0]", Name: "API_VERSION", Default: "v1", HasDefault: true},
		{Path: "services[0].routes[0].headers[0].values[0]", Name: "ENV_NAME"},
		{Path: "services[0].routes[0].policies[0].config.redis.address", Name: "REDIS_ADDR"},
		{Path: "services[0].routes[0].policies[0].config.redis.password", Name: "REDIS_PASSWORD", Secret: true},
		{Path: "services[0].routes[0].policies[0].config.redis.timeout", Name: "REDIS_TIMEOUT", Default: "100ms", HasDefault: true},
		{Path: "consumers[0].credentials[0].username", Name: "APP_USER"},
		{Path: "consumers[0].credentials[0].password", Name: "APP_PASSWORD", Secret: true},
		{Path: "consumers[0].credentials[1].key", Name: "APP_KEY", Secret: true},
		{Path: "certificates[0].snis[0]", Name: "API_HOST"},
		{Path: "certificates[0].cert", Name: "API_CERT"},
		{Path: "certificates[0].key", Name: "API_CERT_KEY", Secret: true},
		{Path: "global_policies[0].config.endpoint", Name: "LOG_HOST"},
		{Path: "global_policies[0].config.headers.Authorization", Name: "LOG_TOKEN", Secret: true},
	}
	if !reflect.DeepEqual(refs, want) {
		t.Errorf("Find() =\n%v\nwant\n%v", refs, want)
	}
	if refs, err := Find(nil); refs != nil || err != nil {
		t.Errorf("Find(nil) = %v, %v", refs, err)
	}
}

// prodVars and prodSecrets resolve every placeholder of template.
var (
	prodVars = Values{
		"ORDERS_HOST": "10.0.0.5", "HEALTH_PATH": "/healthz", "API_HOST": "api.example.com",
		"API_DOMAIN": "example.com", "ENV_NAME": "prod", "REDIS_ADDR": "redis.prod:6379",
		"APP_USER": "app", "API_CERT": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
		"LOG_HOST": "logs.prod", "ORDERS_PORT": "", "API_VERSION": "v2",
	}
	prodSecrets = Values{
		"REDIS_PASSWORD": "redis-pw", "APP_PASSWORD": "app-pw", "APP_KEY": "app-key",
		"API_CERT_KEY": "-----BEGIN PRIVATE KEY-----\nMC4\n-----END PRIVATE KEY-----\n", "LOG_TOKEN": "log-token",
	}
)

func TestResolve(t *testing.T) {
	in := decode(t, template)
	before := canonical(t, in)
	got, err := Resolve(in, prodVars, prodSecrets)
	if err != nil {
		t.Fatal(err)
	}
	// An empty setting with a default takes the default, as ${X:-d} does
	// in a shell; $${ is a literal ${.
	want := decode(t, `
upstreams:
  - name: orders
    targets:
      - address: 10.0.0.5:8080
      - address: orders-2.internal:80
    hash_on: {source: header, name: X-Tenant}
    balancer: consistent-hash
    timeouts: {connect: 2s}
    health_check: {path: /healthz}
services:
  - name: orders
    upstream: orders
    routes:
      - name: orders-api
        hosts: [api.example.com, "*.example.com"]
        paths: ["/api/v2/*", "/orders/{id}"]
        methods: [GET]
        headers:
          - name: X-Env
            values: [prod, "${LITERAL}"]
        rewrite: /internal/{id}
        policies:
          - name: rate-limit
            config:
              limits: [{requests: 100, window: minute}]
              redis: {address: "redis.prod:6379", password: redis-pw, timeout: 100ms}
consumers:
  - name: app
    credentials:
      - {type: basic, username: app, password: app-pw}
      - {type: key, key: app-key}
certificates:
  - name: api
    snis: [api.example.com]
    cert: "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"
    key: "-----BEGIN PRIVATE KEY-----\nMC4\n-----END PRIVATE KEY-----\n"
global_policies:
  - name: http-log
    config:
      endpoint: https://logs.prod/ingest
      headers: {Authorization: Bearer log-token}
`)
	if g, w := canonical(t, got), canonical(t, want); g != w {
		t.Errorf("Resolve() =\n%s\nwant\n%s", g, w)
	}
	if after := canonical(t, in); after != before {
		t.Errorf("Resolve changed its input:\n%s\nwas\n%s", after, before)
	}

	// The result shares nothing with the input: changing it leaves the
	// input as it was.
	got.Upstreams[0].Targets[0].Address = "changed"
	got.Upstreams[0].HashOn.Name = "changed"
	got.Services[0].Routes[0].Hosts[0] = "changed"
	got.Services[0].Routes[0].Policies[0].Config["redis"].(map[string]any)["address"] = "changed"
	got.Services[0].Routes[0].Policies[0].Config["limits"].([]any)[0].(map[string]any)["requests"] = 1
	got.GlobalPolicies[0].Config["new"] = true
	if after := canonical(t, in); after != before {
		t.Errorf("changing the result changed the input:\n%s\nwas\n%s", after, before)
	}
}

func TestResolveKeepsTypes(t *testing.T) {
	// Values that are not strings, and configurations built by code with
	// types the decoder does not make, come back as they were.
	in := &deploy.Config{GlobalPolicies: []deploy.Policy{{Name: "external", Config: map[string]any{
		"n": 3, "f": 1.5, "big": json.Number("123456789012345678901234567890"), "b": false, "nil": nil,
		"list": []string{"${A}"}, "map": map[string]string{"k": "${A}"}, "p": new(string),
	}}}}
	got, err := Resolve(in, Values{"A": "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"n": 3, "f": 1.5, "big": json.Number("123456789012345678901234567890"), "b": false, "nil": nil,
		"list": []string{"a"}, "map": map[string]string{"k": "a"}, "p": new(string),
	}
	if !reflect.DeepEqual(got.GlobalPolicies[0].Config, want) {
		t.Errorf("Resolve() config = %#v\nwant %#v", got.GlobalPolicies[0].Config, want)
	}
	if in.GlobalPolicies[0].Config["list"].([]string)[0] != "${A}" {
		t.Error("Resolve changed its input")
	}
}

func TestResolveMissing(t *testing.T) {
	in := decode(t, template)
	vars := Values{"API_HOST": "api.example.com", "ENV_NAME": "prod", "ORDERS_PORT": "8080"}
	secrets := Values{"APP_KEY": "k", "APP_PASSWORD": ""}
	got, err := Resolve(in, vars, secrets)
	if got != nil {
		t.Error("Resolve returned a configuration with an error")
	}
	var me *MissingError
	if !errors.As(err, &me) {
		t.Fatalf("error is %T, want *MissingError: %v", err, err)
	}
	want := []Missing{
		{Name: "API_CERT", Paths: []string{"certificates[0].cert"}},
		{Name: "API_DOMAIN", Paths: []string{"services[0].routes[0].hosts[1]"}},
		{Name: "APP_USER", Paths: []string{"consumers[0].credentials[0].username"}},
		{Name: "HEALTH_PATH", Paths: []string{"upstreams[0].health_check.path"}},
		{Name: "LOG_HOST", Paths: []string{"global_policies[0].config.endpoint"}},
		{Name: "ORDERS_HOST", Paths: []string{"upstreams[0].targets[0].address"}},
		{Name: "REDIS_ADDR", Paths: []string{"services[0].routes[0].policies[0].config.redis.address"}},
		{Name: "API_CERT_KEY", Secret: true, Paths: []string{"certificates[0].key"}},
		{Name: "LOG_TOKEN", Secret: true, Paths: []string{"global_policies[0].config.headers.Authorization"}},
		{Name: "REDIS_PASSWORD", Secret: true, Paths: []string{"services[0].routes[0].policies[0].config.redis.password"}},
	}
	if !reflect.DeepEqual(me.Missing, want) {
		t.Errorf("missing =\n%v\nwant\n%v", me.Missing, want)
	}
	if !strings.HasPrefix(err.Error(), "10 placeholders have no value:\nAPI_CERT (certificates[0].cert)\n") ||
		!strings.Contains(err.Error(), "\nsecret:LOG_TOKEN (global_policies[0].config.headers.Authorization)\n") {
		t.Errorf("error text:\n%v", err)
	}
}

func TestResolveMissingPaths(t *testing.T) {
	// A name used in several fields lists each field once; a setting and
	// a secret of the same name are different names.
	in := decode(t, `
upstreams:
  - name: u
    targets: [{address: "${HOST}:${HOST}"}, {address: "${HOST}:1"}]
services:
  - name: s
    upstream: u
    routes: [{name: r, paths: [/], hosts: ["${HOST}"], headers: [{name: X, values: ["${secret:HOST}"]}]}]
`)
	_, err := Resolve(in, nil, nil)
	want := "2 placeholders have no value:\n" +
		"HOST (upstreams[0].targets[0].address, upstreams[0].targets[1].address, services[0].routes[0].hosts[0])\n" +
		"secret:HOST (services[0].routes[0].headers[0].values[0])"
	if err == nil || err.Error() != want {
		t.Errorf("Resolve() error =\n%v\nwant\n%s", err, want)
	}
	_, err = Resolve(decode(t, `{upstreams: [{name: u, targets: [{address: "${secret:A}"}]}]}`), Values{"A": "settings are not secrets"}, nil)
	if err == nil || err.Error() != "1 placeholder has no value:\nsecret:A (upstreams[0].targets[0].address)" {
		t.Errorf("a secret read from the settings: %v", err)
	}
}

func TestResolveMalformed(t *testing.T) {
	// Malformed placeholders are reported before missing names, all with
	// their paths, and so are placeholders in names and keywords.
	in := decode(t, `
upstreams:
  - name: "${UPSTREAM}"
    balancer: "${BALANCER}"
    targets: [{address: "${"}, {address: "${lower}:80"}, {address: "${MISSING}:80"}]
services:
  - name: s
    upstream: "${UPSTREAM}"
    routes:
      - name: r
        paths: ["/${secret:}"]
        methods: ["${METHOD}"]
        policies:
          - name: "${POLICY}"
            config: {a: [x, {"b.c": "${secret:A:-x}"}]}
consumers:
  - name: c
    credentials: [{type: "${TYPE}", key: "${A:x}"}]
`)
	_, err := Resolve(in, nil, nil)
	want := []string{
		"upstreams[0].name: names and keywords cannot hold placeholders",
		`upstreams[0].targets[0].address: malformed placeholder at character 1: "${" without a closing "}"`,
		`upstreams[0].targets[1].address: malformed placeholder at character 1: a name is 1 to 128 upper-case letters, digits or "_", starting with a letter`,
		"upstreams[0].balancer: names and keywords cannot hold placeholders",
		"services[0].upstream: names and keywords cannot hold placeholders",
		"services[0].routes[0].paths[0]: malformed placeholder at character 2: no name",
		"services[0].routes[0].methods[0]: names and keywords cannot hold placeholders",
		"services[0].routes[0].policies[0].name: names and keywords cannot hold placeholders",
		`services[0].routes[0].policies[0].config.a[1]["b.c"]: malformed placeholder at character 1: a secret has no default`,
		"consumers[0].credentials[0].type: names and keywords cannot hold placeholders",
		"consumers[0].credentials[0].key: malformed placeholder at character 1: a default is written ${NAME:-default}; a secret ${secret:NAME}",
	}
	if got := errorLines(t, err); !slices.Equal(got, want) {
		t.Errorf("Resolve() errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	refs, err := Find(in)
	if got := errorLines(t, err); !slices.Equal(got, want) {
		t.Errorf("Find() errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(refs) != 1 || refs[0].Name != "MISSING" {
		t.Errorf("Find() refs = %v, want the one that reads", refs)
	}
	if _, err := Resolve(nil, nil, nil); err == nil {
		t.Error("Resolve(nil) did not fail")
	}
}

func TestCheckSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         []string
	}{
		{"placeholders", template, nil},
		{"empty secrets", `{consumers: [{name: c, credentials: [{type: key}]}]}`, nil},
		{"no configuration", `{}`, nil},
		{"literal credentials and key", `
consumers:
  - name: c
    credentials:
      - {type: key, key: k-123}
      - {type: basic, username: u, password: "pw ${secret:PW}"}
      - {type: jwt, subject: s, secret: "${SECRET}"}
      - {type: key, key: "${secret:A}${secret:B}"}
      - {type: key, key: "$${secret:A}"}
certificates:
  - {name: c, snis: [a.example.com], cert: "${CERT}", key: "-----BEGIN PRIVATE KEY-----"}
`, []string{
			"consumers[0].credentials[0].key",
			"consumers[0].credentials[1].password",
			"consumers[0].credentials[2].secret",
			"consumers[0].credentials[3].key",
			"consumers[0].credentials[4].key",
			"certificates[0].key",
		}},
		{"policy configurations", `
global_policies:
  - name: external
    config:
      secret: s3cr3t
      client_secret: ${secret:OK}
      db_password: [hunter2, "${secret:OK}"]
      redis: {Password: pw, address: "r:6379", timeout: 1s, db: 3}
      passwords: not-matched-by-name
      secret_header: X-Signature
      nested: {password: 5, secret: true}
`, []string{
			"global_policies[0].config.db_password[0]",
			"global_policies[0].config.redis.Password",
			"global_policies[0].config.secret",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSecrets(decode(t, tc.config))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckSecrets() = %v", err)
				}
				return
			}
			var paths []string
			for _, line := range errorLines(t, err) {
				path, msg, _ := strings.Cut(line, ": ")
				if msg != "holds a secret in clear: write it as a ${secret:NAME} placeholder, set in each domain's secrets" {
					t.Errorf("message %q", msg)
				}
				paths = append(paths, path)
			}
			if !slices.Equal(paths, tc.want) {
				t.Errorf("CheckSecrets() paths =\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.Contains(err.Error(), "k-123") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
	if err := CheckSecrets(nil); err != nil {
		t.Errorf("CheckSecrets(nil) = %v", err)
	}
}

// genericPath removes list indexes from a path.
var listIndex = regexp.MustCompile(`\[\d+\]`)

// TestEveryString checks the walk against an independent reading of the
// configuration, its JSON encoding: every string of the encoding is
// visited at the same path, except the durations, which are not strings
// in Config. It uses testdata/full.yaml, which sets every field. It also
// pins which fields are names and keywords, and which are secrets.
func TestEveryString(t *testing.T) {
	cfg, err := deploy.DecodeFile(filepath.Join("..", "testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	visited := make(map[string]string)
	kinds := make(map[string]string)
	walkConfig(cfg, func(f field, s string) string {
		visited[f.path()] = s
		kind := "plain"
		switch {
		case f.literal:
			kind = "literal"
		case f.secret:
			kind = "secret"
		}
		g := listIndex.ReplaceAllString(f.path(), "[]")
		if k, ok := kinds[g]; ok && k != kind {
			t.Errorf("%s is %s and %s", g, k, kind)
		}
		kinds[g] = kind
		return s
	})

	b, err := cfg.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	encoded := make(map[string]string)
	var collect func(path string, v any)
	collect = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				collect(fieldpath.Join(path, k), e)
			}
		case []any:
			for i, e := range v {
				collect(fieldpath.Index(path, i), e)
			}
		case string:
			encoded[path] = v
		}
	}
	collect("", doc)
	durations := regexp.MustCompile(`^upstreams\[\d+\]\.(timeouts\.(connect|read|write)|health_check\.(interval|timeout)|passive\.eject_for)$`)
	for path, s := range encoded {
		if durations.MatchString(path) {
			continue
		}
		if v, ok := visited[path]; !ok || v != s {
			t.Errorf("%s = %q is not visited (visited: %q, %v)", path, s, v, ok)
		}
	}
	for path, s := range visited {
		// Empty strings of omitempty fields are not encoded.
		if _, ok := encoded[path]; !ok && s != "" {
			t.Errorf("visited %s, which the encoding does not have", path)
		}
	}

	var literal, secret []string
	for g, k := range kinds {
		switch k {
		case "literal":
			literal = append(literal, g)
		case "secret":
			secret = append(secret, g)
		}
	}
	slices.Sort(literal)
	slices.Sort(secret)
	wantLiteral := []string{
		"consumers[].credentials[].type",
		"consumers[].name",
		"consumers[].policies[].name",
		"certificates[].name",
		"global_policies[].name",
		"services[].name",
		"services[].policies[].name",
		"services[].routes[].methods[]",
		"services[].routes[].name",
		"services[].routes[].policies[].name",
		"services[].upstream",
		"upstreams[].balancer",
		"upstreams[].hash_on.source",
		"upstreams[].name",
	}
	slices.Sort(wantLiteral)
	wantSecret := []string{
		"certificates[].key",
		"consumers[].credentials[].key",
		"consumers[].credentials[].password",
		"consumers[].credentials[].secret",
	}
	if !slices.Equal(literal, wantLiteral) {
		t.Errorf("names and keywords:\n%s\nwant\n%s", strings.Join(literal, "\n"), strings.Join(wantLiteral, "\n"))
	}
	if !slices.Equal(secret, wantSecret) {
		t.Errorf("secrets:\n%s\nwant\n%s", strings.Join(secret, "\n"), strings.Join(wantSecret, "\n"))
	}
}
