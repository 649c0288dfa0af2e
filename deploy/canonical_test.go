package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func mustDecode(t *testing.T, in string) *Config {
	t.Helper()
	c, err := Decode([]byte(in))
	if err != nil {
		t.Fatalf("Decode:\n%v", err)
	}
	return c
}

func checksum(t *testing.T, c *Config) string {
	t.Helper()
	sum, err := c.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestChecksumSameConfiguration(t *testing.T) {
	forms := map[string]string{
		"yaml": `
upstreams:
  - name: u
    targets: [{address: "a:1", weight: 2}]
    timeouts: {read: 90s}
services:
  - name: s
    upstream: u
    routes:
      - name: r
        paths: ["/x/{id}"]
        methods: [GET]
        policies:
          - name: p
            config: {b: [1, 2.5, "x"], a: {z: true, y: null}}
`,
		"json": `{"upstreams":[{"name":"u","targets":[{"address":"a:1","weight":2}],"timeouts":{"read":"90s"}}],
"services":[{"name":"s","upstream":"u","routes":[{"name":"r","paths":["/x/{id}"],"methods":["GET"],
"policies":[{"name":"p","config":{"b":[1,2.5,"x"],"a":{"z":true,"y":null}}}]}]}]}`,
		"reordered": `
services:
  - routes:
      - policies:
          - config:
              a: {y: ~, z: true}
              b: [1, 2.50, 'x']
            name: p
        methods: ["GET"]
        paths:
          - /x/{id}
        name: r
    upstream: u
    name: s
upstreams:
  - timeouts: {read: 1m30s, write: 0s}
    targets:
      - weight: 2
        address: a:1
    name: u
    hash_on: null
`,
	}
	want := checksum(t, mustDecode(t, forms["yaml"]))
	for name, in := range forms {
		if got := checksum(t, mustDecode(t, in)); got != want {
			t.Errorf("%s: checksum %s, want %s", name, got, want)
		}
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(want) {
		t.Errorf("checksum %q is not sha256:<hex>", want)
	}

	for _, changed := range []string{
		strings.Replace(forms["yaml"], "weight: 2", "weight: 3", 1),
		strings.Replace(forms["yaml"], "read: 90s", "read: 91s", 1),
		strings.Replace(forms["yaml"], "2.5", "2.51", 1),
		strings.Replace(forms["yaml"], "z: true", "z: false", 1),
		strings.Replace(forms["yaml"], "[GET]", "[GET, HEAD]", 1),
	} {
		if got := checksum(t, mustDecode(t, changed)); got == want {
			t.Errorf("changed configuration has the same checksum:\n%s", changed)
		}
	}
}

// TestChecksumFullExample compares full.yaml with its conversion to JSON by
// a generic YAML to JSON conversion, which sorts the keys.
func TestChecksumFullExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	asJSON, err := json.MarshalIndent(generic, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := checksum(t, mustDecode(t, string(data))), checksum(t, mustDecode(t, string(asJSON))); a != b {
		t.Errorf("full.yaml checksum %s, as JSON %s", a, b)
	}
}

func TestCanonicalFormat(t *testing.T) {
	c := mustDecode(t, `
global_policies:
  - name: p
    config: {z: "<a&b>", a: 1, m: {y: 2, x: [é, "\u2028"]}}
upstreams:
  - name: u
    targets: [{address: "a:1"}]
    timeouts: {connect: 1500ms}
`)
	got, err := c.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"upstreams":[{"name":"u","targets":[{"address":"a:1"}],"timeouts":{"connect":"1.5s"}}],` +
		`"global_policies":[{"name":"p","config":{"a":1,"m":{"x":["é","\u2028"],"y":2},"z":"<a&b>"}}]}`
	if string(got) != want {
		t.Errorf("Canonical() =\n%s\nwant\n%s", got, want)
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	inputs := map[string]string{
		"awkward characters": "global_policies: [{name: p, config: {\"k\\x7f\\x85\": \"\\x7f\\x85\\x9f\\ufffe\\uffff\\u2028\\t\\0\\e\"}}]\n",
		"numbers":            "global_policies: [{name: p, config: {a: 1e19, b: 18446744073709551615, c: 1.0, d: 1e-7, e: -0.0, f: 5e-324}}]\n",
		"empty lists":        "upstreams: [{name: u, targets: []}]\nservices: [{name: s, routes: [{paths: []}]}]\n",
	}
	data, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inputs["full.yaml"] = string(data)
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			first, err := mustDecode(t, in).Canonical()
			if err != nil {
				t.Fatal(err)
			}
			c, err := DecodeCanonical(first)
			if err != nil {
				t.Fatalf("DecodeCanonical(%s):\n%v", first, err)
			}
			second, err := c.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Errorf("round trip changed the canonical encoding:\n%s\n%s", first, second)
			}
		})
	}
}

func TestDecodeCanonicalRefusesYAML(t *testing.T) {
	for _, in := range []string{"services: []\n", "{services: []}", "", `{"services": []} x`} {
		if _, err := DecodeCanonical([]byte(in)); err == nil {
			t.Errorf("DecodeCanonical(%q) succeeded", in)
		}
	}
	if _, err := DecodeCanonical([]byte(`{"servicez": []}`)); err == nil || err.Error() != "servicez: unknown field (line 1)" {
		t.Errorf("DecodeCanonical with an unknown field: %v", err)
	}
}
