package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Canonical returns the canonical encoding of c: compact JSON with the
// fields in the order of the Go structs, map keys sorted, HTML characters
// left alone and no trailing newline. Decoding a file and encoding it gives
// the same bytes however the file was written (YAML or JSON, key order,
// quoting, duration spelling), which is what makes Checksum comparable
// between the admin node and the gateways.
func (c *Config) Canonical() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	return escapeForYAML(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// Checksum returns "sha256:" and the hex SHA-256 of the canonical encoding.
func (c *Config) Checksum() (string, error) {
	b, err := c.Canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// DecodeCanonical decodes a canonical encoding, as a gateway receives it.
// It is Decode restricted to JSON, so that a YAML document cannot pass for
// a canonical encoding.
func DecodeCanonical(b []byte) (*Config, error) {
	if !json.Valid(b) || !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{")) {
		return nil, Errors{{Message: "canonical configuration must be a JSON object"}}
	}
	return Decode(b)
}

// escapeForYAML writes as \u escapes the characters encoding/json leaves
// as they are but YAML parsers refuse (DEL, the C1 controls, U+FFFE and
// U+FFFF) or read as a line break (U+0085), so that DecodeCanonical, which
// parses JSON as YAML, reads back what was encoded. JSON holds non-ASCII
// characters only inside strings, where an escape means the same.
func escapeForYAML(b []byte) []byte {
	if !bytes.ContainsFunc(b, needsEscape) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if needsEscape(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

func needsEscape(r rune) bool {
	return 0x7f <= r && r <= 0x9f || r == 0xfffe || r == 0xffff
}
