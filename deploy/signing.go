package deploy

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors of Verify, wrapped with details, so that a gateway can tell a
// corrupted transfer from a deployment of another domain and from a
// configuration it cannot serve.
var (
	ErrChecksumMismatch = errors.New("deployment checksum does not match its configuration")
	ErrBadSignature     = errors.New("deployment is not signed by the domain's key")
	ErrInvalidConfig    = errors.New("deployment configuration is invalid")
)

// signingVersion starts the signed bytes so that a later format can never
// produce the same bytes for different fields.
const signingVersion = "gatehouse-deployment-v1\n"

// Deployment is what travels from the admin node to node managers and
// gateways: an immutable, numbered snapshot of a group's configuration,
// signed with the domain's key. Gateways accept only deployments signed by
// their domain's key, so a compromised node manager or a forged request
// cannot make them serve anything else.
//
// The signature does not stop replays: a gateway must also check that
// Domain and Group are its own and refuse a Number lower than the one it
// serves, or an old, correctly signed deployment could roll it back.
type Deployment struct {
	Domain   string `json:"domain"`
	Group    string `json:"group"`
	Number   uint64 `json:"number"`
	Checksum string `json:"checksum"` // "sha256:<hex>" of Config
	// Config is the canonical encoding of a Config (see Config.Canonical).
	// It must travel byte for byte, but for the changes encoding/json makes
	// to an embedded json.RawMessage (docs/deployments.md lists them).
	Config    json.RawMessage `json:"config"`
	Author    string          `json:"author"`
	Message   string          `json:"message,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Signature []byte          `json:"signature"` // ed25519 over SigningBytes()
}

// NewDeployment makes an unsigned deployment of cfg. It refuses an invalid
// configuration, which no gateway would accept, and text fields that are
// not UTF-8, which JSON would alter on the way and so break the signature.
// CreatedAt is at in UTC, without its monotonic clock reading, so that it
// is the same after a JSON round trip. kinds checks the policies, as for
// Validate.
func NewDeployment(domain, group string, number uint64, cfg *Config, author, message string, at time.Time, kinds PolicyKinds) (*Deployment, error) {
	if cfg == nil {
		return nil, errors.New("new deployment: no configuration")
	}
	for _, f := range []struct{ name, value string }{
		{"domain", domain}, {"group", group}, {"author", author}, {"message", message},
	} {
		if !utf8.ValidString(f.value) {
			return nil, fmt.Errorf("new deployment: %s is not valid UTF-8", f.name)
		}
	}
	if err := cfg.Validate(kinds); err != nil {
		return nil, fmt.Errorf("new deployment: %w: %w", ErrInvalidConfig, err)
	}
	canonical, err := cfg.Canonical()
	if err != nil {
		return nil, fmt.Errorf("new deployment: %w", err)
	}
	return &Deployment{
		Domain:    domain,
		Group:     group,
		Number:    number,
		Checksum:  checksumOf(canonical),
		Config:    canonical,
		Author:    author,
		Message:   message,
		CreatedAt: at.UTC(),
	}, nil
}

// SigningBytes returns what the signature covers: every field but
// Signature, in this format (docs/deployments.md describes it for other
// implementations):
//
//	"gatehouse-deployment-v1\n"
//	field(domain) field(group) uint64(number) field(checksum)
//	field(config) field(author) field(message) field(created_at)
//
// where uint64(n) is n as 8 bytes big-endian, field(s) is uint64(len(s))
// followed by the bytes of s, config is the canonical encoding (Config as
// canonicalConfig returns it) and created_at is CreatedAt in UTC formatted
// as RFC 3339 with nanoseconds (time.RFC3339Nano). Length prefixes make the
// encoding unambiguous whatever the fields hold, which a separator would
// not.
func (d *Deployment) SigningBytes() []byte {
	config := canonicalConfig(d.Config)
	created := d.CreatedAt.UTC().Format(time.RFC3339Nano)
	b := make([]byte, 0, len(signingVersion)+8*8+len(d.Domain)+len(d.Group)+
		len(d.Checksum)+len(config)+len(d.Author)+len(d.Message)+len(created))
	b = append(b, signingVersion...)
	b = appendField(b, d.Domain)
	b = appendField(b, d.Group)
	b = binary.BigEndian.AppendUint64(b, d.Number)
	b = appendField(b, d.Checksum)
	b = appendField(b, string(config))
	b = appendField(b, d.Author)
	b = appendField(b, d.Message)
	b = appendField(b, created)
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// Sign sets Signature. It panics if key is not an ed25519 private key, as
// ed25519.Sign does: that is a programming error, not a runtime condition.
func (d *Deployment) Sign(key ed25519.PrivateKey) {
	d.Signature = ed25519.Sign(key, d.SigningBytes())
}

// Verify checks, in this order, that Config matches Checksum
// (ErrChecksumMismatch), that the deployment is signed by pub
// (ErrBadSignature), and that Config decodes strictly and is valid
// (ErrInvalidConfig, wrapping the Errors), its policies checked by kinds as
// for Validate. The configuration is only parsed once it is known to come
// from the domain's key.
func (d *Deployment) Verify(pub ed25519.PublicKey, kinds PolicyKinds) error {
	_, err := d.Open(pub, kinds)
	return err
}

// Open is Verify returning the configuration it decoded and validated,
// for a receiver that applies it: parsing it again would double a
// gateway's work for every deployment.
func (d *Deployment) Open(pub ed25519.PublicKey, kinds PolicyKinds) (*Config, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("verify deployment: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	config := canonicalConfig(d.Config)
	if sum := checksumOf(config); sum != d.Checksum {
		return nil, fmt.Errorf("verify deployment %d: %w: configuration is %s, deployment says %q", d.Number, ErrChecksumMismatch, sum, d.Checksum)
	}
	if !ed25519.Verify(pub, d.SigningBytes(), d.Signature) {
		return nil, fmt.Errorf("verify deployment %d: %w (key %s)", d.Number, ErrBadSignature, KeyFingerprint(pub))
	}
	cfg, err := DecodeCanonical(config)
	if err == nil {
		err = cfg.Validate(kinds)
	}
	if err != nil {
		return nil, fmt.Errorf("verify deployment %d: %w:\n%w", d.Number, ErrInvalidConfig, err)
	}
	return cfg, nil
}

// Decode returns the configuration of d, decoded strictly. It does not
// verify d: call Verify first on anything received.
func (d *Deployment) Decode() (*Config, error) {
	return DecodeCanonical(canonicalConfig(d.Config))
}

func checksumOf(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// canonicalConfig undoes what encoding/json does to a json.RawMessage
// embedded in what it encodes, so that a Deployment passed through
// json.Marshal, MarshalIndent or an Encoder still verifies: it indents the
// message with the rest, and by default writes <, > and & as \u003c, \u003e
// and \u0026. The canonical encoding has no whitespace outside strings and
// never escapes those three characters, so removing the one and unescaping
// the other gives back the canonical bytes. Anything else (invalid JSON,
// another encoder's formatting) is returned as it is and fails the
// checksum.
func canonicalConfig(b []byte) []byte {
	if !json.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b))
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			continue
		case c == '"':
			inString = !inString
		case inString && c == '\\':
			// Valid JSON never ends inside an escape, so i+1 exists.
			if r, ok := htmlEscapes[string(b[i:min(i+6, len(b))])]; ok {
				out = append(out, r)
				i += 5
				continue
			}
			out = append(out, c, b[i+1])
			i++
			continue
		}
		out = append(out, c)
	}
	return out
}

// htmlEscapes are the escapes encoding/json writes for HTML safety, as it
// writes them.
var htmlEscapes = map[string]byte{`\u003c`: '<', `\u003e`: '>', `\u0026`: '&'}

// GenerateSigningKey makes a domain's key pair.
func GenerateSigningKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate signing key: %w", err)
	}
	return pub, priv, nil
}

const publicKeyPrefix = "ed25519:"

// EncodePublicKey returns the text form of pub for files and flags:
// "ed25519:" and the standard, padded base64 of the 32 key bytes. The
// prefix leaves room for other algorithms without guessing from lengths.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads the text form of EncodePublicKey. Surrounding
// whitespace is ignored, since keys are read from files that end with a
// newline.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	enc, ok := strings.CutPrefix(s, publicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("parse public key: must start with %q", publicKeyPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("parse public key: invalid base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("parse public key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// KeyFingerprint returns "SHA256:" and the unpadded URL-safe base64 of the
// SHA-256 of the 32 key bytes: short enough to print, compare by eye and
// pin in a gateway's configuration.
func KeyFingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawURLEncoding.EncodeToString(sum[:])
}
