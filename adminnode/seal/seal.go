// Package seal encrypts the admin node's environment secrets at rest. The
// key is a file of the data dir (settings.key, beside admin.db and
// signing.key), so that a copy of admin.db alone — a stray backup, a file
// attached to a bug report — does not reveal the secrets. It is no
// defence against someone who reads the whole data dir: that person also
// holds the CA and the signing key.
//
// A sealed value is bound to its environment and name (they are the
// AEAD's additional data): one moved to another name in admin.db does not
// open there.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the size of a key file: random bytes, nothing else, so that
// one can also be made by hand (head -c 32 /dev/urandom).
const KeySize = 32

// version prefixes every sealed value: its format (AES-256-GCM, a random
// nonce, the key derived with info "gatehouse environment secrets v1").
const version = 1

// ErrOpen is the error of Open for a value the key did not seal, for
// another place, or damaged: AES-GCM cannot tell these apart.
var ErrOpen = errors.New("secret does not open with this key (sealed by another key, for another name, or damaged)")

// Key seals and opens secrets. It is safe for concurrent use.
type Key struct {
	aead cipher.AEAD
}

// NewKeyFile returns the content of a new key file.
func NewKeyFile() []byte {
	b := make([]byte, KeySize)
	rand.Read(b) // never fails: it crashes the program instead
	return b
}

// Parse reads the content of a key file.
func Parse(file []byte) (*Key, error) {
	if len(file) != KeySize {
		return nil, fmt.Errorf("settings key: %d bytes, want %d random bytes", len(file), KeySize)
	}
	// The file's bytes are not used as the cipher key directly, so that
	// the same file can key other uses later without the two meeting.
	k, err := hkdf.Key(sha256.New, file, nil, "gatehouse environment secrets v1", 32)
	if err != nil {
		return nil, fmt.Errorf("settings key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("settings key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("settings key: %w", err)
	}
	return &Key{aead: aead}, nil
}

// place is the additional data binding a value to where it is stored.
// The NUL cannot be in an environment's name, so two places never give
// the same bytes.
func place(env, name string) []byte {
	return []byte("environment-secret\x00" + env + "\x00" + name)
}

// Seal encrypts value as the secret name of environment env.
func (k *Key) Seal(env, name string, value []byte) []byte {
	n := k.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(value)+k.aead.Overhead())
	out[0] = version
	nonce := out[1:]
	rand.Read(nonce)
	return k.aead.Seal(out, nonce, value, place(env, name))
}

// Open decrypts what Seal made of the secret name of environment env.
func (k *Key) Open(env, name string, sealed []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < 1+n+k.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	value, err := k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], place(env, name))
	if err != nil {
		return nil, ErrOpen
	}
	return value, nil
}
