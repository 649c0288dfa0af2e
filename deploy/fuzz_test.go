package deploy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds the files of testdata and a few awkward inputs.
func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"{}",
		"---\n---\n",
		"&a [*a]",
		"global_policies: [{name: p, config: {a: &x [1, *x], <<: {b: 1}}}]",
		"global_policies: [{name: p, config: {a: 1e400, b: -0.0, c: 0x10, d: 2024-01-01, \"\\x85\": \"\\ufffe\"}}]",
		"global_policies: [{name: external, config: {plugin: p, config: {a: 1e19, b: -0.0, c: 0x10, d: 2024-01-01, \"\\x85\": \"\\ufffe\"}}}]",
		"global_policies: [{name: rate-limit, config: {limits: [{requests: 1.0, window: 90s}, {requests: 2147483648, window: minute}], key: header}}, {name: rate-limit}]",
		"services: [{name: s, upstream: u, routes: [{name: r, paths: [/], policies: [{name: cors, config: {origins: ['*.example.com'], max_age: 0s}}, {name: traffic-split, config: {rules: [{upstreams: [{upstream: u, weight: 100}]}]}}]}]}]\nupstreams: [{name: u, targets: [{address: 'a:1'}]}]",
		`{"services": [{"routes": [{"paths": ["/a/{id}"], "rewrite": "/{id}", "priority": 9223372036854775807}]}]}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecode checks that Decode never panics, reports failures as Errors,
// and that what it accepts survives the canonical round trip unchanged.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 || c != nil {
				t.Fatalf("Decode error %T %v with Config %v", err, err, c)
			}
			return
		}
		first, err := c.Canonical()
		if err != nil {
			t.Fatalf("Canonical: %v", err)
		}
		c2, err := DecodeCanonical(first)
		if err != nil {
			t.Fatalf("DecodeCanonical(%s):\n%v", first, err)
		}
		second, err := c2.Canonical()
		if err != nil {
			t.Fatalf("Canonical after DecodeCanonical: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("canonical round trip changed:\n%s\n%s", first, second)
		}
	})
}

// FuzzValidate checks that Validate never panics and that it judges a
// configuration by what its canonical encoding holds, as a gateway
// receiving it would.
func FuzzValidate(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		verr := c.Validate(testKinds)
		for _, e := range errorLines(t, verr) {
			if e == "" {
				t.Fatal("empty error message")
			}
		}
		canonical, err := c.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeCanonical(canonical)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := errorString(verr), errorString(c2.Validate(testKinds)); a != b {
			t.Fatalf("validation differs after the canonical round trip:\n%s\n---\n%s", a, b)
		}
	})
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
