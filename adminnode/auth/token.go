package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	tokenPrefix = "gh_"
	idBytes     = 8
	secretBytes = 32
	idLen       = 2 * idBytes                              // lowercase hex
	secretLen   = (secretBytes*8 + 5) / 6                  // base64url, no padding: 43
	bearerLen   = len(tokenPrefix) + idLen + 1 + secretLen // gh_ id _ secret
	hashPrefix  = "sha256:"
)

// ErrMalformedToken is returned by ParseBearer for anything that is not a
// well-formed bearer token. Its wrapping messages never quote the token,
// which may be a real secret with a typo.
var ErrMalformedToken = errors.New("malformed API token")

// Token is a newly made API token. Bearer is shown to the user once; the
// server keeps ID and HashSecret(Secret).
type Token struct {
	ID     string
	Secret string
	Bearer string
}

// NewToken makes a token with a random 8-byte id and 32-byte secret.
func NewToken() (Token, error) {
	raw := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return Token{}, fmt.Errorf("new token: %w", err)
	}
	id := hex.EncodeToString(raw[:idBytes])
	secret := base64.RawURLEncoding.EncodeToString(raw[idBytes:])
	return Token{ID: id, Secret: secret, Bearer: tokenPrefix + id + "_" + secret}, nil
}

// ParseBearer splits a bearer token into its id and secret. It is strict
// (prefix, lengths, alphabets, canonical base64) so that each token has
// exactly one spelling and garbage is refused before any store lookup.
// The split is by position, not by "_", because the base64url secret may
// itself contain underscores.
func ParseBearer(s string) (id, secret string, err error) {
	if len(s) != bearerLen {
		return "", "", fmt.Errorf("%w: length %d, want %d", ErrMalformedToken, len(s), bearerLen)
	}
	if !strings.HasPrefix(s, tokenPrefix) {
		return "", "", fmt.Errorf("%w: want prefix %q", ErrMalformedToken, tokenPrefix)
	}
	id, sep, secret := s[len(tokenPrefix):len(tokenPrefix)+idLen], s[len(tokenPrefix)+idLen], s[len(tokenPrefix)+idLen+1:]
	if sep != '_' {
		return "", "", fmt.Errorf("%w: want _ after the id", ErrMalformedToken)
	}
	if !isLowerHex(id) {
		return "", "", fmt.Errorf("%w: id must be lowercase hex", ErrMalformedToken)
	}
	// Strict decoding refuses non-zero trailing bits, so only the encoding
	// NewToken produces is accepted.
	if raw, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil || len(raw) != secretBytes {
		return "", "", fmt.Errorf("%w: secret must be %d bytes of unpadded base64url", ErrMalformedToken, secretBytes)
	}
	return id, secret, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// HashSecret returns the stored form of a token secret: "sha256:" and the
// hex SHA-256. A fast unsalted hash is right here, unlike for passwords: the
// secret is 256 random bits, so there is no dictionary to precompute and
// nothing a slow hash would protect, while it would cost every API request.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// SecretMatches reports whether secret hashes to hash, comparing in constant
// time so that response timing does not reveal how much of the hash matched.
func SecretMatches(hash, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(hash), []byte(HashSecret(secret))) == 1
}
