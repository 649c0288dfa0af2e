package promotion

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/deploy/placeholder"
)

// Format is the version of the package format that Export writes and Open
// reads. A change that an older reader would misread gets a new number.
const Format = 1

// Errors of Export and Open, wrapped with details, so that callers can
// tell a damaged file from a package of an unknown domain and from one
// they are told not to trust.
var (
	// ErrMalformed: the file is not a package (not JSON, unknown or
	// missing fields, an unreadable key).
	ErrMalformed = errors.New("not a valid promotion package")
	// ErrUnsupportedFormat: a package of another format version.
	ErrUnsupportedFormat = errors.New("unsupported package format")
	// ErrChecksumMismatch: the configuration is not the one the package
	// describes; it was damaged or altered.
	ErrChecksumMismatch = errors.New("package checksum does not match its configuration")
	// ErrUntrustedDomain: the target domain does not trust the source
	// domain.
	ErrUntrustedDomain = errors.New("package comes from a domain that is not trusted")
	// ErrKeyMismatch: the package names a key other than the one the
	// target domain trusts for the source domain.
	ErrKeyMismatch = errors.New("package is signed with another key than the one trusted for its domain")
	// ErrBadSignature: the signature is not the trusted key's over the
	// package's fields; some field was altered.
	ErrBadSignature = errors.New("package signature is not valid")
	// ErrInvalidConfig: the configuration cannot be read, or has
	// malformed placeholders.
	ErrInvalidConfig = errors.New("package configuration is invalid")
	// ErrLiteralSecret: a secret field holds a value in clear rather than
	// a ${secret:NAME} placeholder.
	ErrLiteralSecret = errors.New("configuration holds secrets in clear")
)

// signingPrefix starts the signed bytes. It differs from the prefix of
// deployments ("gatehouse-deployment-v1\n"), which the same domain key
// signs, so that neither signature can be taken for the other.
const signingPrefix = "gatehouse-package\n"

// Package is a package file, as JSON. Every field is signed but Signature.
type Package struct {
	Format int `json:"format"`
	// Domain is the source domain's name; DomainKey its public key in the
	// text form of deploy.EncodePublicKey. Open checks DomainKey against
	// the key the target trusts for Domain, never the reverse.
	Domain    string `json:"domain"`
	DomainKey string `json:"domain_key"`
	// Group and Deployment are the source group and the number of the
	// deployment the configuration was taken from.
	Group      string `json:"group"`
	Deployment uint64 `json:"deployment"`
	// Checksum is "sha256:" and the hex SHA-256 of Config, as
	// deploy.Config.Checksum computes it.
	Checksum string `json:"checksum"`
	// CreatedAt, Author and Message are those of the source deployment.
	CreatedAt time.Time `json:"created_at"`
	Author    string    `json:"author"`
	Message   string    `json:"message"`
	// Config is the canonical encoding of the configuration, with its
	// placeholders (deploy.Config.Canonical). In the file it may be
	// indented: whitespace outside strings is not part of it.
	Config    json.RawMessage `json:"config"`
	Signature []byte          `json:"signature"` // Ed25519 over SigningBytes
}

// Source is what a package is made of: a configuration as the team wrote
// it, placeholders unresolved, and the deployment it comes from.
type Source struct {
	Domain     string
	Group      string
	Deployment uint64
	Author     string
	Message    string
	CreatedAt  time.Time
	Config     *deploy.Config
}

// FromDeployment returns the source of a package of d. d's configuration
// must be the one with placeholders; a resolved one would carry the source
// domain's values, and its secrets, which Export refuses.
func FromDeployment(d *deploy.Deployment) (Source, error) {
	cfg, err := d.Decode()
	if err != nil {
		return Source{}, fmt.Errorf("deployment %d: %w:\n%w", d.Number, ErrInvalidConfig, err)
	}
	return Source{
		Domain:     d.Domain,
		Group:      d.Group,
		Deployment: d.Number,
		Author:     d.Author,
		Message:    d.Message,
		CreatedAt:  d.CreatedAt,
		Config:     cfg,
	}, nil
}

// Export returns the package file of src, signed with key, the source
// domain's private key; the file names key's public key as DomainKey.
// The same source and key give the same bytes.
//
// It refuses a configuration with malformed placeholders, or with
// placeholders where names and keywords are (ErrInvalidConfig wrapping
// deploy.Errors), and one whose secret fields hold anything but a
// ${secret:NAME} placeholder (ErrLiteralSecret wrapping deploy.Errors
// with the paths of those fields), so that a package never carries a
// secret in clear. It does not validate the configuration: placeholders
// stand where validation expects addresses or host names, so it is
// validated once resolved, in the target domain.
func Export(src Source, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("export: private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if src.Config == nil {
		return nil, errors.New("export: no configuration")
	}
	for _, f := range []struct{ name, value string }{
		{"domain", src.Domain}, {"group", src.Group}, {"author", src.Author}, {"message", src.Message},
	} {
		if !utf8.ValidString(f.value) {
			// JSON would replace the invalid bytes and break the signature.
			return nil, fmt.Errorf("export: %s is not valid UTF-8", f.name)
		}
	}
	switch {
	case src.Domain == "":
		return nil, errors.New("export: no source domain")
	case src.Group == "":
		return nil, errors.New("export: no source group")
	case src.Deployment == 0:
		return nil, errors.New("export: no deployment number")
	}
	if _, err := placeholder.Find(src.Config); err != nil {
		return nil, fmt.Errorf("export: %w:\n%w", ErrInvalidConfig, err)
	}
	if err := placeholder.CheckSecrets(src.Config); err != nil {
		return nil, fmt.Errorf("export: %w:\n%w", ErrLiteralSecret, err)
	}
	canonical, err := src.Config.Canonical()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	p := &Package{
		Format:     Format,
		Domain:     src.Domain,
		DomainKey:  deploy.EncodePublicKey(key.Public().(ed25519.PublicKey)),
		Group:      src.Group,
		Deployment: src.Deployment,
		Checksum:   checksumOf(canonical),
		CreatedAt:  src.CreatedAt.UTC(),
		Author:     src.Author,
		Message:    src.Message,
		Config:     canonical,
	}
	p.Signature = ed25519.Sign(key, p.SigningBytes())
	b, err := encode(p, "  ")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return append(b, '\n'), nil
}

// encode writes p as Export does, indented by indent, or compact when
// indent is empty.
func encode(p *Package, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// SigningBytes returns what the signature covers: every field but
// Signature, in this format (docs/promotion.md describes it for other
// implementations):
//
//	"gatehouse-package\n"
//	uint64(format) field(domain) field(domain_key) field(group)
//	uint64(deployment) field(checksum) field(created_at) field(author)
//	field(message) field(config)
//
// where uint64(n) is n as 8 bytes big-endian, field(s) is uint64(len(s))
// followed by the bytes of s, created_at is CreatedAt in UTC formatted as
// RFC 3339 with nanoseconds (time.RFC3339Nano), and config is Config as it
// is (Open has removed the whitespace an indented file adds). Length
// prefixes make the encoding unambiguous whatever the fields hold.
func (p *Package) SigningBytes() []byte {
	created := p.CreatedAt.UTC().Format(time.RFC3339Nano)
	b := make([]byte, 0, len(signingPrefix)+10*8+len(p.Domain)+len(p.DomainKey)+len(p.Group)+
		len(p.Checksum)+len(created)+len(p.Author)+len(p.Message)+len(p.Config))
	b = append(b, signingPrefix...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Format))
	b = appendField(b, p.Domain)
	b = appendField(b, p.DomainKey)
	b = appendField(b, p.Group)
	b = binary.BigEndian.AppendUint64(b, p.Deployment)
	b = appendField(b, p.Checksum)
	b = appendField(b, created)
	b = appendField(b, p.Author)
	b = appendField(b, p.Message)
	b = appendField(b, string(p.Config))
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// Open reads a package file and verifies it for the target domain, whose
// trusted function returns the public key it trusts for a source domain,
// and false for a domain it does not trust. A domain that imports its own
// packages trusts itself with its own key.
//
// It checks, in this order, and refuses the package at the first failure:
//
//  1. the file is a package of format Format, written as Export writes
//     it, whitespace outside strings aside (ErrUnsupportedFormat,
//     ErrMalformed);
//  2. Config matches Checksum (ErrChecksumMismatch);
//  3. Domain is trusted (ErrUntrustedDomain), and DomainKey is the key
//     trusted for it (ErrKeyMismatch);
//  4. Signature is that key's over SigningBytes (ErrBadSignature): no field
//     was altered;
//  5. Config decodes strictly, is in canonical form and its placeholders
//     are well-formed (ErrInvalidConfig);
//  6. no secret field holds a secret in clear (ErrLiteralSecret).
//
// The configuration is only parsed once the signature has passed. It is
// not validated, nor are its placeholders resolved: that is the import's
// work, with the target's settings and secrets.
func Open(b []byte, trusted func(domain string) (ed25519.PublicKey, bool)) (*Package, error) {
	p, err := parse(b)
	if err != nil {
		return nil, err
	}
	if sum := checksumOf(p.Config); sum != p.Checksum {
		return nil, fmt.Errorf("open package: %w: configuration is %s, package says %q", ErrChecksumMismatch, sum, p.Checksum)
	}
	want, ok := trusted(p.Domain)
	if !ok {
		return nil, fmt.Errorf("open package: %w: %q; register the domain and its key to import from it", ErrUntrustedDomain, p.Domain)
	}
	if len(want) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("open package: the key trusted for domain %q has %d bytes, want %d", p.Domain, len(want), ed25519.PublicKeySize)
	}
	got, err := deploy.ParsePublicKey(p.DomainKey)
	if err != nil {
		return nil, fmt.Errorf("open package: %w: domain_key: %w", ErrMalformed, err)
	}
	if !got.Equal(want) {
		return nil, fmt.Errorf("open package: %w: domain %q: the package names key %s, the key trusted for it is %s",
			ErrKeyMismatch, p.Domain, deploy.KeyFingerprint(got), deploy.KeyFingerprint(want))
	}
	if !ed25519.Verify(want, p.SigningBytes(), p.Signature) {
		return nil, fmt.Errorf("open package: %w (domain %q, key %s)", ErrBadSignature, p.Domain, deploy.KeyFingerprint(want))
	}
	cfg, err := p.Decode()
	if err != nil {
		return nil, fmt.Errorf("open package: %w:\n%w", ErrInvalidConfig, err)
	}
	if canonical, err := cfg.Canonical(); err != nil || !bytes.Equal(canonical, p.Config) {
		return nil, fmt.Errorf("open package: %w: configuration is not in canonical form", ErrInvalidConfig)
	}
	if _, err := placeholder.Find(cfg); err != nil {
		return nil, fmt.Errorf("open package: %w:\n%w", ErrInvalidConfig, err)
	}
	if err := placeholder.CheckSecrets(cfg); err != nil {
		return nil, fmt.Errorf("open package: %w:\n%w", ErrLiteralSecret, err)
	}
	return p, nil
}

// parse reads the file strictly, with Config compacted to the bytes the
// checksum and the signature cover.
func parse(b []byte) (*Package, error) {
	// The format is read first and alone, so that a package of a later
	// format is reported as such rather than as having unknown fields.
	var head struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("open package: %w: %w", ErrMalformed, err)
	}
	switch {
	case head.Format == nil:
		return nil, fmt.Errorf("open package: %w: no format", ErrMalformed)
	case *head.Format != Format:
		return nil, fmt.Errorf("open package: %w %d: this version reads format %d", ErrUnsupportedFormat, *head.Format, Format)
	}

	var p Package
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("open package: %w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("open package: %w: data after the package", ErrMalformed)
	}
	var missing []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"domain", p.Domain != ""},
		{"domain_key", p.DomainKey != ""},
		{"group", p.Group != ""},
		{"deployment", p.Deployment != 0},
		{"checksum", p.Checksum != ""},
		{"created_at", !p.CreatedAt.IsZero()},
		{"config", len(p.Config) > 0 && string(p.Config) != "null"},
		{"signature", len(p.Signature) > 0},
	} {
		if !f.set {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("open package: %w: missing %s", ErrMalformed, strings.Join(missing, ", "))
	}
	// Config and the file are valid JSON: the decoder has checked them.
	var config, file bytes.Buffer
	_ = json.Compact(&config, p.Config)
	p.Config = config.Bytes()
	_ = json.Compact(&file, b)
	// JSON has several ways to write the same values (keys in any case and
	// order, escapes, base64 with stray bits), which the signature does
	// not see. The file must be written as Export writes it, whitespace
	// aside, so that no byte of it can change unnoticed.
	if again, err := encode(&p, ""); err != nil || !bytes.Equal(again, file.Bytes()) {
		return nil, fmt.Errorf("open package: %w: the file is not written as Export writes it (whitespace aside)", ErrMalformed)
	}
	return &p, nil
}

// Decode returns the configuration of p, decoded strictly, placeholders
// unresolved. It does not verify p: Open does.
func (p *Package) Decode() (*deploy.Config, error) {
	return deploy.DecodeCanonical(p.Config)
}

func checksumOf(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:])
}
