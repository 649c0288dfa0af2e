package deploy

import (
	"fmt"
	"strings"
	"testing"
)

// TestSyntaxErrorLines decodes documents with a syntax error on a known
// line, of each kind yaml.v3 reports (its scanner's and its parser's), and
// checks the line the error names: the line the user must look at.
func TestSyntaxErrorLines(t *testing.T) {
	gateway := strings.Join([]string{
		"upstreams:", // 1
		"  - name: orders",
		"    targets:",
		"      - address: 127.0.0.1:9001",
		"services:", // 5
		"  - name: orders",
		"    upstream: orders",
		"    routes:",
		"      - name: list",
		"        paths: [/orders", // 10: the list is never closed
		"        methods: [GET]",
		"",
	}, "\n")
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"unclosed flow sequence in a configuration", gateway, 10},
		{"unclosed flow sequence", "a: 1\nb: [1, 2\nc: 3\n", 2},
		{"unclosed flow mapping", "a: 1\nb: {x: 1\nc: 3\n", 2},
		{"key less indented than its mapping", "a:\n  b: 1\n c: 2\n", 3},
		{"list item among keys", "a: 1\n- b\n", 2},
		{"key among list items", "a:\n  - 1\n  b: 2\n", 2},
		{"mapping in a plain value", "a:\n  b: 1\n  c: d: e\n", 3},
		{"tab indentation", "a:\n\tb: 1\n", 2},
		{"reserved character", "a: 1\nb: @x\n", 2},
		{"unclosed quote", "a: 1\nb: 'x\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			if err == nil {
				t.Fatal("decoded")
			}
			if want := fmt.Sprintf("invalid YAML: line %d: ", tc.line); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want it on line %d (%q)\n%s", err, tc.line, want, tc.in)
			}
		})
	}
}
