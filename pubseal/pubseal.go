package pubseal

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of a publish key.
const KeySize = 32

// Format names the layout of a sealed object, and is its first field: a
// reader tells a sealed object from a deployment published in clear by an
// older admin node by it.
const Format = "gatehouse-sealed-deployment-1"

// Errors of Open; test them with errors.Is.
var (
	// ErrNotSealed is an object that is not a sealed deployment: a
	// deployment in clear (published by an admin node older than
	// sealing), or anything else.
	ErrNotSealed = errors.New("not a sealed deployment")
	// ErrUnknownKey is an object sealed with a key the reader does not
	// have: the domain's publish key was rotated since the reader got its
	// keys, or the object is of another domain.
	ErrUnknownKey = errors.New("sealed with a publish key this reader does not have")
	// ErrOpen is an object that names a key the reader has but does not
	// open with it: damaged, changed, or published for another group or
	// domain (the AEAD cannot tell these apart).
	ErrOpen = errors.New("does not open with the publish key: changed, damaged, or published for another group or domain")
)

// Key is one publish key. It is safe for concurrent use.
type Key struct {
	// ID names the key in sealed objects and messages: the first 8 bytes
	// of a hash of it, which reveals nothing of the key.
	ID   string
	raw  []byte
	aead cipher.AEAD
}

// NewKey returns a new random key's bytes.
func NewKey() []byte {
	b := make([]byte, KeySize)
	rand.Read(b) // never fails: it crashes the program instead
	return b
}

// ParseKey makes a Key of raw, KeySize random bytes.
func ParseKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("publish key: %d bytes, want %d", len(raw), KeySize)
	}
	// The cipher key is derived rather than raw itself, and the ID is a
	// hash under another label, so that neither says anything of the other.
	k, err := hkdf.Key(sha256.New, raw, nil, "gatehouse published deployments v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("publish key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, fmt.Errorf("publish key: %w", err)
	}
	id := sha256.Sum256(append([]byte("gatehouse publish key id\x00"), raw...))
	return &Key{ID: hex.EncodeToString(id[:8]), raw: bytes.Clone(raw), aead: aead}, nil
}

// ParseKeys parses each of raws, in order.
func ParseKeys(raws [][]byte) ([]*Key, error) {
	keys := make([]*Key, len(raws))
	for i, r := range raws {
		k, err := ParseKey(r)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys[i] = k
	}
	return keys, nil
}

// Bytes returns the key's bytes.
func (k *Key) Bytes() []byte { return bytes.Clone(k.raw) }

// envelope is a sealed object. Nothing in it but the key's ID says
// anything of what it holds.
type envelope struct {
	Format string `json:"format"`
	Key    string `json:"key"`
	Nonce  []byte `json:"nonce"`
	Sealed []byte `json:"sealed"`
}

// associated binds a sealed object to its domain, group and key. Names
// hold no NUL, so two places never give the same bytes.
func associated(domain, group, keyID string) []byte {
	return []byte(Format + "\x00" + domain + "\x00" + group + "\x00" + keyID)
}

// Seal encrypts deployment, the JSON of the signed deployment of group
// in domain, as a publishable object.
func Seal(k *Key, domain, group string, deployment []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	return json.Marshal(envelope{
		Format: Format,
		Key:    k.ID,
		Nonce:  nonce,
		Sealed: k.aead.Seal(nil, nonce, deployment, associated(domain, group, k.ID)),
	})
}

// KeyID returns the ID of the key object is sealed with.
func KeyID(object []byte) (string, error) {
	e, err := decode(object)
	if err != nil {
		return "", err
	}
	return e.Key, nil
}

func decode(object []byte) (envelope, error) {
	var e envelope
	if err := json.Unmarshal(object, &e); err != nil {
		return e, fmt.Errorf("%w: %w", ErrNotSealed, err)
	}
	switch {
	case e.Format == "" && bytes.Contains(object, []byte(`"signature"`)):
		return e, fmt.Errorf("%w: a deployment in clear, as admin nodes published before sealing; refused (an admin node of this version publishes it again sealed)", ErrNotSealed)
	case e.Format != Format:
		return e, fmt.Errorf("%w: format %q, want %q", ErrNotSealed, e.Format, Format)
	case e.Key == "" || len(e.Sealed) == 0:
		return e, fmt.Errorf("%w: no key or no content", ErrNotSealed)
	}
	return e, nil
}

// Open decrypts what Seal made of group's deployment in domain with
// whichever of keys it was sealed with, and returns the deployment's JSON
// and the key's ID. Its signature is still to be checked.
func Open(keys []*Key, domain, group string, object []byte) ([]byte, string, error) {
	e, err := decode(object)
	if err != nil {
		return nil, "", err
	}
	for _, k := range keys {
		if k.ID != e.Key {
			continue
		}
		if len(e.Nonce) != k.aead.NonceSize() {
			return nil, e.Key, fmt.Errorf("%w (nonce of %d bytes)", ErrOpen, len(e.Nonce))
		}
		d, err := k.aead.Open(nil, e.Nonce, e.Sealed, associated(domain, group, k.ID))
		if err != nil {
			return nil, e.Key, fmt.Errorf("%w (key %s, opened as group %q of domain %q)", ErrOpen, e.Key, group, domain)
		}
		return d, e.Key, nil
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return nil, e.Key, fmt.Errorf("%w: key %s, this reader has %v", ErrUnknownKey, e.Key, ids)
}
