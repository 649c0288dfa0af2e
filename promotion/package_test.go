package promotion_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/deploy/placeholder"
	"github.com/gatehouse/gatehouse/policy/catalog"
	"github.com/gatehouse/gatehouse/promotion"
)

// key returns a fixed key pair, so that failures are reproducible.
func key(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

var (
	devPub, devKey     = key(1)
	otherPub, otherKey = key(2)
)

// trust is the target's trusted domains.
func trust(domains map[string]ed25519.PublicKey) func(string) (ed25519.PublicKey, bool) {
	return func(domain string) (ed25519.PublicKey, bool) {
		pub, ok := domains[domain]
		return pub, ok
	}
}

var trustDev = trust(map[string]ed25519.PublicKey{"dev": devPub})

func decode(t *testing.T, yaml string) *deploy.Config {
	t.Helper()
	cfg, err := deploy.Decode([]byte(yaml))
	if err != nil {
		t.Fatalf("decode:\n%v", err)
	}
	return cfg
}

// template is a configuration as a team writes it for promotion.
const template = `
upstreams:
  - name: orders
    targets: [{address: "${ORDERS_HOST:-orders.internal}:8080"}]
services:
  - name: orders
    upstream: orders
    routes:
      - name: orders-api
        hosts: ["${API_HOST}"]
        paths: [/orders/*]
        headers: [{name: X-Note, values: ["a<b>&c é"]}]
consumers:
  - name: app
    credentials: [{type: key, key: "${secret:APP_KEY}"}]
global_policies:
  - name: rate-limit
    config:
      limits: [{requests: 100, window: minute}]
      redis: {address: "${REDIS_ADDR}", password: "${secret:REDIS_PASSWORD}"}
`

var createdAt = time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("CET", 3600))

func source(t *testing.T) promotion.Source {
	return promotion.Source{
		Domain: "dev", Group: "payments", Deployment: 7,
		Author: "alice@example.com", Message: "new <orders> & more",
		CreatedAt: createdAt, Config: decode(t, template),
	}
}

func export(t *testing.T, src promotion.Source, key ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := promotion.Export(src, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExportOpen(t *testing.T) {
	src := source(t)
	before, _ := src.Config.Canonical()
	b := export(t, src, devKey)
	p, err := promotion.Open(b, trustDev)
	if err != nil {
		t.Fatalf("Open: %v\n%s", err, b)
	}
	sum, _ := src.Config.Checksum()
	if p.Format != 1 || p.Domain != "dev" || p.DomainKey != deploy.EncodePublicKey(devPub) ||
		p.Group != "payments" || p.Deployment != 7 || p.Checksum != sum ||
		!p.CreatedAt.Equal(createdAt) || p.CreatedAt.Location() != time.UTC ||
		p.Author != "alice@example.com" || p.Message != "new <orders> & more" {
		t.Errorf("Open() = %+v", p)
	}
	if !bytes.Equal(p.Config, before) {
		t.Errorf("config =\n%s\nwant\n%s", p.Config, before)
	}
	cfg, err := p.Decode()
	if err != nil {
		t.Fatal(err)
	}
	// The placeholders travel as they were written.
	refs, err := placeholder.Find(cfg)
	if err != nil || len(refs) != 5 {
		t.Errorf("placeholders after Open: %v, %v", refs, err)
	}
	// The file is readable JSON, ends with a newline, and is the same for
	// the same source.
	if !json.Valid(b) || !bytes.HasSuffix(b, []byte("}\n")) || !bytes.Contains(b, []byte("\n  \"config\": {\n")) {
		t.Errorf("file layout:\n%s", b)
	}
	if again := export(t, src, devKey); !bytes.Equal(again, b) {
		t.Error("two exports of the same source differ")
	}
	if after, _ := src.Config.Canonical(); !bytes.Equal(after, before) {
		t.Error("Export changed its source")
	}
}

// TestRoundTrip exports a deployment without placeholders and opens it:
// the configuration has the deployment's checksum.
func TestRoundTrip(t *testing.T) {
	cfg := decode(t, `
upstreams: [{name: orders, targets: [{address: "10.0.0.5:8080"}], timeouts: {read: 90s}}]
services:
  - name: orders
    upstream: orders
    routes: [{name: r, paths: ["/orders/{id}"], headers: [{name: X-Note, values: ["a<b>&c é \u2028 \u007f"]}]}]
    policies: [{name: cors, config: {origins: ["https://app.example.com"], max_age: 1m}}]
`)
	d, err := deploy.NewDeployment("dev", "payments", 12, cfg, "alice", "round <trip>", createdAt, catalog.Checker{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := promotion.FromDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	p, err := promotion.Open(export(t, src, devKey), trustDev)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := p.Decode()
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := placeholder.Resolve(opened, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := resolved.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if sum != d.Checksum || p.Checksum != d.Checksum {
		t.Errorf("checksums: resolved %s, package %s, deployment %s", sum, p.Checksum, d.Checksum)
	}
	if p.Group != d.Group || p.Deployment != d.Number || p.Author != d.Author || p.Message != d.Message || !p.CreatedAt.Equal(d.CreatedAt) {
		t.Errorf("metadata: %+v, deployment %+v", p, d)
	}
}

// replace replaces old by new in b, once, failing when b has no old.
func replace(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("the file has no %q:\n%s", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// signed writes p as Export does, compact, signed with key: a package made
// by another implementation, or by someone holding the key.
func signed(t *testing.T, p promotion.Package, key ed25519.PrivateKey) []byte {
	t.Helper()
	p.Signature = ed25519.Sign(key, p.SigningBytes())
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withConfig returns the package of the good file with another
// configuration and its checksum, not signed again.
func withConfig(t *testing.T, good []byte, config string) promotion.Package {
	t.Helper()
	var p promotion.Package
	if err := json.Unmarshal(good, &p); err != nil {
		t.Fatal(err)
	}
	p.Config = json.RawMessage(config)
	p.Checksum = checksum(config)
	return p
}

// checksum is the checksum of config's bytes, canonical or not.
func checksum(config string) string {
	sum := sha256.Sum256([]byte(config))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestOpenRefuses(t *testing.T) {
	good := export(t, source(t), devKey)
	byOther := export(t, source(t), otherKey)
	config := func(b []byte) string {
		var p promotion.Package
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		var c bytes.Buffer
		_ = json.Compact(&c, p.Config)
		return c.String()
	}(good)
	tamperedConfig := strings.Replace(config, "orders.internal", "orders.evil", 1)

	for _, tc := range []struct {
		name    string
		file    []byte
		trusted func(string) (ed25519.PublicKey, bool)
		want    error
		// msg is a part of the error's text.
		msg string
	}{
		{"untrusted domain", good, trust(nil), promotion.ErrUntrustedDomain, `"dev"`},
		{"another key trusted for the domain", good, trust(map[string]ed25519.PublicKey{"dev": otherPub}),
			promotion.ErrKeyMismatch, deploy.KeyFingerprint(otherPub)},
		{"signed by another key in the domain's name", byOther, trustDev, promotion.ErrKeyMismatch, deploy.KeyFingerprint(devPub)},
		{"the trusted key named, another key's signature",
			replace(t, byOther, deploy.EncodePublicKey(otherPub), deploy.EncodePublicKey(devPub)), trustDev, promotion.ErrBadSignature, ""},
		{"tampered config", replace(t, good, "orders.internal", "orders.evil"), trustDev, promotion.ErrChecksumMismatch, ""},
		{"tampered config and checksum", signedWithout(t, withConfig(t, good, tamperedConfig)), trustDev, promotion.ErrBadSignature, ""},
		{"tampered group", replace(t, good, `"group": "payments"`, `"group": "payment5"`), trustDev, promotion.ErrBadSignature, ""},
		{"tampered deployment", replace(t, good, `"deployment": 7`, `"deployment": 8`), trustDev, promotion.ErrBadSignature, ""},
		{"tampered domain", replace(t, good, `"domain": "dev"`, `"domain": "dew"`), trust(map[string]ed25519.PublicKey{"dew": devPub}), promotion.ErrBadSignature, ""},
		{"tampered author", replace(t, good, `alice@`, `mallory@`), trustDev, promotion.ErrBadSignature, ""},
		{"tampered message", replace(t, good, `new <orders>`, `old <orders>`), trustDev, promotion.ErrBadSignature, ""},
		{"tampered time", replace(t, good, `04:06:07`, `04:06:08`), trustDev, promotion.ErrBadSignature, ""},
		{"another package's signature", replace(t, good, signature(t, good), signature(t, byOther)), trust(map[string]ed25519.PublicKey{"dev": devPub}), promotion.ErrBadSignature, ""},
		{"no signature", replace(t, good, signature(t, good), ""), trustDev, promotion.ErrMalformed, "missing signature"},
		{"format 2", replace(t, good, `"format": 1`, `"format": 2`), trustDev, promotion.ErrUnsupportedFormat, "format 2"},
		{"format 0", replace(t, good, `"format": 1`, `"format": 0`), trustDev, promotion.ErrUnsupportedFormat, ""},
		{"no format", replace(t, good, `"format": 1,`, ``), trustDev, promotion.ErrMalformed, "no format"},
		{"format as text", replace(t, good, `"format": 1`, `"format": "1"`), trustDev, promotion.ErrMalformed, ""},
		{"not JSON", []byte("PK\x03\x04"), trustDev, promotion.ErrMalformed, ""},
		{"YAML", []byte("format: 1\n"), trustDev, promotion.ErrMalformed, ""},
		{"unknown field", replace(t, good, `"group":`, `"extra": true, "group":`), trustDev, promotion.ErrMalformed, "unknown field"},
		{"missing fields", replace(t, good, `"group": "payments",`, ``), trustDev, promotion.ErrMalformed, "missing group"},
		{"data after the package", append(bytes.Clone(good), "{}"...), trustDev, promotion.ErrMalformed, ""},
		{"a key in another case", replace(t, good, `"group":`, `"Group":`), trustDev, promotion.ErrMalformed, "as Export writes it"},
		{"an escaped character", replace(t, good, `"payments"`, `"p\u0061yments"`), trustDev, promotion.ErrMalformed, "as Export writes it"},
		{"an unreadable key", replace(t, good, `"domain_key": "ed25519:`, `"domain_key": "rsa:`), trustDev, promotion.ErrMalformed, "domain_key"},
		{"a signed literal secret", signed(t, withConfig(t, good, `{"consumers":[{"name":"app","credentials":[{"type":"key","key":"k-123"}]}]}`), devKey),
			trustDev, promotion.ErrLiteralSecret, "consumers[0].credentials[0].key"},
		{"a signed malformed placeholder", signed(t, withConfig(t, good, `{"upstreams":[{"name":"u","targets":[{"address":"${lower}"}],"timeouts":{}}]}`), devKey),
			trustDev, promotion.ErrInvalidConfig, "upstreams[0].targets[0].address"},
		{"a signed unknown field", signed(t, withConfig(t, good, `{"servicez":[]}`), devKey), trustDev, promotion.ErrInvalidConfig, "servicez"},
		{"a signed non-canonical config", signed(t, withConfig(t, good, `{"upstreams":[{"targets":[{"address":"a:1"}],"name":"u","timeouts":{}}]}`), devKey),
			trustDev, promotion.ErrInvalidConfig, "canonical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := promotion.Open(tc.file, tc.trusted)
			if !errors.Is(err, tc.want) || p != nil {
				t.Fatalf("Open() = %v, %v; want %v", p, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "k-123") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

// signature returns the signature of a file as it is written there.
func signature(t *testing.T, b []byte) string {
	t.Helper()
	var f struct {
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Signature == "" {
		t.Fatalf("no signature: %v", err)
	}
	return f.Signature
}

// signedWithout writes p with the signature it has, as an attacker without
// the key would.
func signedWithout(t *testing.T, p promotion.Package) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestOpenEveryByte changes each byte of a file in turn: each change is
// refused. Whitespace outside strings is free, so re-indenting is not.
func TestOpenEveryByte(t *testing.T) {
	src := promotion.Source{Domain: "dev", Group: "g", Deployment: 1, Author: "a", CreatedAt: createdAt,
		Config: decode(t, `{upstreams: [{name: u, targets: [{address: "${HOST}:80"}]}]}`)}
	good := export(t, src, devKey)
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 1
		if _, err := promotion.Open(b, trustDev); err == nil {
			t.Errorf("byte %d changed from %q to %q: accepted\n%s", i, good[i], b[i], b)
		}
	}
	var compact, tabs bytes.Buffer
	if err := json.Compact(&compact, good); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&tabs, good, "", "\t"); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{compact.Bytes(), tabs.Bytes(), bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n"))} {
		if _, err := promotion.Open(b, trustDev); err != nil {
			t.Errorf("Open(reformatted) = %v\n%s", err, b)
		}
	}
}

func TestExportRefuses(t *testing.T) {
	literal := source(t)
	literal.Config = decode(t, `
consumers:
  - name: app
    credentials:
      - {type: key, key: k-123}
      - {type: basic, username: u, password: "${PASSWORD}"}
certificates:
  - {name: c, snis: [a.example.com], cert: "${CERT}", key: "-----BEGIN PRIVATE KEY-----"}
global_policies:
  - name: rate-limit
    config: {redis: {address: "r:6379", password: hunter2}}
`)
	_, err := promotion.Export(literal, devKey)
	if !errors.Is(err, promotion.ErrLiteralSecret) {
		t.Fatalf("Export() = %v, want ErrLiteralSecret", err)
	}
	var es deploy.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %T has no deploy.Errors", err)
	}
	var paths []string
	for _, e := range es {
		paths = append(paths, e.Path)
	}
	want := []string{
		"consumers[0].credentials[0].key",
		"consumers[0].credentials[1].password",
		"certificates[0].key",
		"global_policies[0].config.redis.password",
	}
	if !slices.Equal(paths, want) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
	if strings.Contains(err.Error(), "k-123") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows a secret: %v", err)
	}

	malformed := source(t)
	malformed.Config = decode(t, `{upstreams: [{name: "${U}", targets: [{address: "${lower}"}]}]}`)
	if _, err := promotion.Export(malformed, devKey); !errors.Is(err, promotion.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "upstreams[0].name") || !strings.Contains(err.Error(), "upstreams[0].targets[0].address") {
		t.Errorf("Export(malformed placeholders) = %v", err)
	}

	for _, tc := range []struct {
		name   string
		change func(*promotion.Source)
		key    ed25519.PrivateKey
	}{
		{"no configuration", func(s *promotion.Source) { s.Config = nil }, devKey},
		{"no domain", func(s *promotion.Source) { s.Domain = "" }, devKey},
		{"no group", func(s *promotion.Source) { s.Group = "" }, devKey},
		{"no deployment", func(s *promotion.Source) { s.Deployment = 0 }, devKey},
		{"invalid UTF-8", func(s *promotion.Source) { s.Message = "\xff" }, devKey},
		{"no key", func(*promotion.Source) {}, nil},
		{"short key", func(*promotion.Source) {}, devKey[:32]},
	} {
		src := source(t)
		tc.change(&src)
		if b, err := promotion.Export(src, tc.key); err == nil {
			t.Errorf("%s: Export() succeeded:\n%s", tc.name, b)
		}
	}
}

func TestOpenBadTrustedKey(t *testing.T) {
	good := export(t, source(t), devKey)
	if _, err := promotion.Open(good, trust(map[string]ed25519.PublicKey{"dev": devPub[:31]})); err == nil {
		t.Error("Open with a 31-byte trusted key succeeded")
	}
}

// TestSigningBytesFormat pins the documented format, which other
// implementations follow.
func TestSigningBytesFormat(t *testing.T) {
	p := &promotion.Package{
		Format: 1, Domain: "d", DomainKey: "ed25519:K", Group: "g", Deployment: 258, Checksum: "sha256:00",
		CreatedAt: time.Date(2026, 1, 2, 4, 4, 5, 600, time.FixedZone("", 3600)),
		Author:    "au", Message: "", Config: json.RawMessage(`{"a":"<"}`),
		Signature: []byte("ignored"),
	}
	var want []byte
	field := func(s string) {
		want = binary.BigEndian.AppendUint64(want, uint64(len(s)))
		want = append(want, s...)
	}
	want = append(want, "gatehouse-package\n"...)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 1)
	field("d")
	field("ed25519:K")
	field("g")
	want = append(want, 0, 0, 0, 0, 0, 0, 1, 2)
	field("sha256:00")
	field("2026-01-02T03:04:05.0000006Z")
	field("au")
	field("")
	field(`{"a":"<"}`)
	if got := p.SigningBytes(); !bytes.Equal(got, want) {
		t.Errorf("SigningBytes:\n got %q\nwant %q", got, want)
	}
	// Moving bytes from one field to the next changes the signed bytes.
	q := *p
	q.Domain, q.DomainKey = "de", "d25519:K"
	if bytes.Equal(q.SigningBytes(), p.SigningBytes()) {
		t.Error("domain and domain_key boundary is ambiguous")
	}
}
