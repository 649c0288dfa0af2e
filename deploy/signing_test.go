package deploy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// signingConfig is a valid configuration holding the characters that
// encoding/json escapes for HTML, to check that they survive the trip.
const signingConfig = `
upstreams:
  - name: orders
    targets: [{address: "10.0.0.1:8080"}]
services:
  - name: orders
    upstream: orders
    routes:
      - name: list-orders
        paths: [/orders]
        methods: [GET]
        policies:
          - name: request-headers
            config: {set: {X-Note: "a<b>&c", X-Line: "x\u2028y"}}
`

var signingTime = time.Date(2026, 11, 23, 18, 30, 0, 123456789, time.UTC)

func mustKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func signedDeployment(t *testing.T, priv ed25519.PrivateKey) *Deployment {
	t.Helper()
	d, err := NewDeployment("acme", "prod", 7, mustDecode(t, signingConfig), "alice", "add orders", signingTime, testKinds)
	if err != nil {
		t.Fatal(err)
	}
	d.Sign(priv)
	return d
}

// roundTrip passes d through JSON as an admin node and a gateway would.
func roundTrip(t *testing.T, d *Deployment, marshal func(any) ([]byte, error)) *Deployment {
	t.Helper()
	b, err := marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var out Deployment
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestDeploymentSignVerify(t *testing.T) {
	pub, priv := mustKey(t)
	d := signedDeployment(t, priv)
	cfg := mustDecode(t, signingConfig)
	if want := checksum(t, cfg); d.Checksum != want {
		t.Errorf("Checksum = %s, want %s", d.Checksum, want)
	}
	if err := d.Verify(pub, testKinds); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	indent := func(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
	for name, marshal := range map[string]func(any) ([]byte, error){"Marshal": json.Marshal, "MarshalIndent": indent} {
		t.Run(name, func(t *testing.T) {
			got := roundTrip(t, d, marshal)
			if bytes.Equal(got.Config, d.Config) {
				t.Fatal("encoding/json left Config alone; the test no longer checks canonicalConfig")
			}
			if err := got.Verify(pub, testKinds); err != nil {
				t.Fatalf("Verify after %s: %v", name, err)
			}
			dec, err := got.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dec, cfg) {
				t.Errorf("Decode = %+v, want %+v", dec, cfg)
			}
		})
	}
}

func TestDeploymentCreatedAtZone(t *testing.T) {
	pub, priv := mustKey(t)
	d := signedDeployment(t, priv)
	d.CreatedAt = d.CreatedAt.In(time.FixedZone("CET", 3600))
	if err := d.Verify(pub, testKinds); err != nil {
		t.Errorf("same instant in another zone: %v", err)
	}
}

// TestDeploymentChangedField changes every field but the signature in turn.
func TestDeploymentChangedField(t *testing.T) {
	pub, priv := mustKey(t)
	other := mustDecode(t, strings.Replace(signingConfig, "[GET]", "[POST]", 1))
	otherCanonical, err := other.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field  string
		change func(d *Deployment)
		want   error
	}{
		{"domain", func(d *Deployment) { d.Domain = "acmf" }, ErrBadSignature},
		{"group", func(d *Deployment) { d.Group = "" }, ErrBadSignature},
		{"number", func(d *Deployment) { d.Number++ }, ErrBadSignature},
		{"checksum", func(d *Deployment) { d.Checksum = checksum(t, other) }, ErrChecksumMismatch},
		{"config", func(d *Deployment) {
			d.Config = otherCanonical
			d.Checksum = checksum(t, other)
		}, ErrBadSignature},
		{"author", func(d *Deployment) { d.Author = "mallory" }, ErrBadSignature},
		{"message", func(d *Deployment) { d.Message += " " }, ErrBadSignature},
		{"created_at", func(d *Deployment) { d.CreatedAt = d.CreatedAt.Add(time.Nanosecond) }, ErrBadSignature},
		{"signature", func(d *Deployment) { d.Signature[0] ^= 1 }, ErrBadSignature},
	}
	covered := make(map[string]bool)
	for _, tt := range tests {
		covered[tt.field] = true
		t.Run(tt.field, func(t *testing.T) {
			d := signedDeployment(t, priv)
			tt.change(d)
			if err := d.Verify(pub, testKinds); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	typ := reflect.TypeFor[Deployment]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if !covered[name] {
			t.Errorf("field %s is not changed by the test", name)
		}
	}
}

// TestSigningBytesUnambiguous moves bytes from one field to the next,
// which a plain concatenation would not notice.
func TestSigningBytesUnambiguous(t *testing.T) {
	a := &Deployment{Domain: "ab", Group: "c", Config: json.RawMessage(`{}`), CreatedAt: signingTime}
	b := &Deployment{Domain: "a", Group: "bc", Config: json.RawMessage(`{}`), CreatedAt: signingTime}
	if bytes.Equal(a.SigningBytes(), b.SigningBytes()) {
		t.Error("domain and group boundary is ambiguous")
	}
}

// TestSigningBytesFormat pins the documented format, which other
// implementations follow.
func TestSigningBytesFormat(t *testing.T) {
	d := &Deployment{
		Domain: "d", Group: "g", Number: 258, Checksum: "sha256:00",
		Config: json.RawMessage(`{ "a":"<" }`), Author: "au", Message: "",
		CreatedAt: time.Date(2026, 1, 2, 4, 4, 5, 600, time.FixedZone("", 3600)),
	}
	var want []byte
	field := func(s string) {
		want = binary.BigEndian.AppendUint64(want, uint64(len(s)))
		want = append(want, s...)
	}
	want = append(want, "gatehouse-deployment-v1\n"...)
	field("d")
	field("g")
	want = append(want, 0, 0, 0, 0, 0, 0, 1, 2)
	field("sha256:00")
	field(`{"a":"<"}`)
	field("au")
	field("")
	field("2026-01-02T03:04:05.0000006Z")
	if got := d.SigningBytes(); !bytes.Equal(got, want) {
		t.Errorf("SigningBytes:\n got %q\nwant %q", got, want)
	}
}

func TestVerifyWrongKey(t *testing.T) {
	_, priv := mustKey(t)
	other, _ := mustKey(t)
	err := signedDeployment(t, priv).Verify(other, testKinds)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify = %v, want ErrBadSignature", err)
	}
	if !strings.Contains(err.Error(), KeyFingerprint(other)) {
		t.Errorf("error %q does not name the key", err)
	}
}

func TestVerifyMalformedKey(t *testing.T) {
	_, priv := mustKey(t)
	d := signedDeployment(t, priv)
	for _, pub := range []ed25519.PublicKey{nil, make(ed25519.PublicKey, 31)} {
		if err := d.Verify(pub, testKinds); err == nil {
			t.Errorf("Verify with a %d-byte key succeeded", len(pub))
		}
	}
}

func TestVerifyUnsigned(t *testing.T) {
	pub, priv := mustKey(t)
	d := signedDeployment(t, priv)
	d.Signature = nil
	if err := d.Verify(pub, testKinds); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify = %v, want ErrBadSignature", err)
	}
}

func TestVerifyTamperedConfig(t *testing.T) {
	pub, priv := mustKey(t)
	d := signedDeployment(t, priv)
	d.Config = bytes.Replace(d.Config, []byte(`"GET"`), []byte(`"PUT"`), 1)
	err := d.Verify(pub, testKinds)
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("Verify = %v, want ErrChecksumMismatch", err)
	}
	if errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify = %v, also ErrBadSignature", err)
	}
}

// signRaw signs config as the admin node would if it skipped validation.
func signRaw(t *testing.T, priv ed25519.PrivateKey, config string) *Deployment {
	t.Helper()
	d := &Deployment{
		Domain: "acme", Group: "prod", Number: 1, Config: json.RawMessage(config),
		Checksum: checksumOf([]byte(config)), Author: "alice", CreatedAt: signingTime,
	}
	d.Sign(priv)
	return d
}

func TestVerifyInvalidConfig(t *testing.T) {
	pub, priv := mustKey(t)
	invalid := &Config{Services: []Service{{Name: "s", Upstream: "missing", Routes: []Route{{Name: "r", Paths: []string{"/"}}}}}}
	canonical, err := invalid.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		config string
		lines  []string
	}{
		"rules": {string(canonical), []string{`services[0].upstream: no upstream is named "missing"`}},
		"shape": {`{"services":[{"name":"s","upstraem":"u"}]}`, nil},
		"yaml":  {"services: []", nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := signRaw(t, priv, tt.config).Verify(pub, testKinds)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Verify = %v, want ErrInvalidConfig", err)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Verify = %v, does not wrap Errors", err)
			}
			if tt.lines != nil {
				if got := errorLines(t, es); !reflect.DeepEqual(got, tt.lines) {
					t.Errorf("errors = %q, want %q", got, tt.lines)
				}
			}
		})
	}
}

func TestNewDeploymentRefuses(t *testing.T) {
	valid := mustDecode(t, signingConfig)
	invalid := &Config{Upstreams: []Upstream{{Name: "u"}}}
	tests := map[string]struct {
		cfg           *Config
		domain, group string
	}{
		"nil config":     {nil, "acme", "prod"},
		"invalid config": {invalid, "acme", "prod"},
		"invalid UTF-8":  {valid, "acme", "pr\xffod"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := NewDeployment(tt.domain, tt.group, 1, tt.cfg, "alice", "", signingTime, testKinds); err == nil {
				t.Error("NewDeployment succeeded")
			}
		})
	}
	if _, err := NewDeployment("acme", "prod", 1, invalid, "alice", "", signingTime, testKinds); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid config: %v, want ErrInvalidConfig", err)
	}
}

func TestPublicKeyText(t *testing.T) {
	pub, _ := mustKey(t)
	s := EncodePublicKey(pub)
	if !strings.HasPrefix(s, "ed25519:") {
		t.Fatalf("EncodePublicKey = %q", s)
	}
	for _, in := range []string{s, s + "\n", "  " + s + "\r\n"} {
		got, err := ParsePublicKey(in)
		if err != nil {
			t.Fatalf("ParsePublicKey(%q): %v", in, err)
		}
		if !got.Equal(pub) {
			t.Errorf("ParsePublicKey(%q) = %x, want %x", in, got, pub)
		}
	}

	b64 := base64.StdEncoding.EncodeToString
	key := b64(pub)
	// A 32-byte key leaves 2 spare bits in its last base64 character;
	// setting them gives another text for the same key, which Strict
	// refuses.
	last := strings.IndexByte(base64Alphabet, key[42])
	loose := key[:42] + string(base64Alphabet[last^1]) + "="
	for _, in := range []string{
		"",
		"ed25519:",
		key,
		"ED25519:" + key,
		"ssh-ed25519 " + key,
		"ed25519:" + strings.TrimSuffix(key, "="),
		"ed25519:" + key + "=",
		"ed25519:!" + key[1:],
		"ed25519:" + b64(pub[:31]),
		"ed25519:" + b64(append(pub, 0)),
		"ed25519:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)),
		"ed25519:" + loose,
		"ed25519: " + key,
	} {
		if got, err := ParsePublicKey(in); err == nil {
			t.Errorf("ParsePublicKey(%q) = %x, want an error", in, got)
		}
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func TestKeyFingerprint(t *testing.T) {
	a, _ := mustKey(t)
	b, _ := mustKey(t)
	fa := KeyFingerprint(a)
	if !strings.HasPrefix(fa, "SHA256:") || len(fa) != len("SHA256:")+43 || strings.ContainsAny(fa, "+/=") {
		t.Errorf("KeyFingerprint = %q, want SHA256: and 43 base64url characters", fa)
	}
	if fa != KeyFingerprint(append(ed25519.PublicKey(nil), a...)) {
		t.Error("KeyFingerprint differs for the same key")
	}
	if fa == KeyFingerprint(b) {
		t.Error("KeyFingerprint is the same for two keys")
	}
}
