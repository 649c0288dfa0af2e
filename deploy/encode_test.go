package deploy

import (
	"os"
	"strings"
	"testing"
)

// EncodeYAML (config dump, the console's draft editor) writes YAML that
// decodes to the same configuration.
func TestEncodeYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	// Strings that YAML would take for numbers, booleans or null must
	// come back as strings.
	cfg.Services[0].Routes[0].Headers = append(cfg.Services[0].Routes[0].Headers,
		HeaderMatch{Name: "x-tricky", Values: []string{"123", "true", "null", "~", "1e3", "-", "a: b", "#c", "multi\nline"}})
	out, err := EncodeYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(out)
	if err != nil {
		t.Fatalf("decode the dump: %v\n%s", err, out)
	}
	want, _ := cfg.Checksum()
	got, _ := back.Checksum()
	if got != want {
		t.Errorf("dump decodes to another configuration:\n%s", out)
	}
	// Block style, quoted where a plain scalar would be read as another
	// type.
	if !strings.Contains(string(out), "\n              - \"123\"\n") {
		t.Errorf("dump is not in block style:\n%s", out)
	}
}
