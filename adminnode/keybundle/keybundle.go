package keybundle

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Format names the first and only bundle format.
const Format = "gatehouse-key-bundle-v1"

// MinPassphrase is the shortest passphrase Seal accepts: the bundle may be
// copied over channels the keys themselves should never cross, so the
// passphrase is all that protects them there.
const MinPassphrase = 12

// Argon2id parameters of new bundles: about a tenth of a second and 64 MiB
// per guess. They are written in the bundle, so raising them later keeps
// older bundles readable.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 1
	saltSize     = 16
	// maxMemory bounds what a bundle may ask Open to spend, so that a
	// crafted file cannot exhaust the machine.
	maxMemory = 1024 * 1024 // KiB: 1 GiB
	maxTime   = 32
)

// ErrOpen is Open's error for a wrong passphrase or a damaged or edited
// bundle: the AEAD cannot tell them apart.
var ErrOpen = errors.New("key bundle does not open: wrong passphrase, or the file was damaged or edited")

// Keys are the domain's secrets a bundle carries, as the data dir's files
// hold them.
type Keys struct {
	Domain        string `json:"domain"`
	CACertPEM     []byte `json:"ca_cert_pem"`
	CAKeyPEM      []byte `json:"ca_key_pem"`
	SigningKeyPEM []byte `json:"signing_key_pem"`
	SettingsKey   []byte `json:"settings_key"`
}

// header is the clear part of a bundle.
type header struct {
	Format  string `json:"format"`
	Domain  string `json:"domain"`
	KDF     string `json:"kdf"`
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
	Salt    []byte `json:"salt"`
	Nonce   []byte `json:"nonce"`
}

type file struct {
	header
	Sealed []byte `json:"sealed"`
}

// additionalData binds the sealed keys to every header field.
func (h header) additionalData() []byte {
	b, _ := json.Marshal(h) // a struct of plain fields always encodes
	return b
}

func (h header) key(passphrase []byte) []byte {
	return argon2.IDKey(passphrase, h.Salt, h.Time, h.Memory, h.Threads, chacha20poly1305.KeySize)
}

// Seal encrypts k under passphrase and returns the bundle file's content.
func Seal(k Keys, passphrase []byte) ([]byte, error) {
	if len(passphrase) < MinPassphrase {
		return nil, fmt.Errorf("key bundle passphrase: %d characters, want at least %d", len(passphrase), MinPassphrase)
	}
	if k.Domain == "" || len(k.CACertPEM) == 0 || len(k.CAKeyPEM) == 0 || len(k.SigningKeyPEM) == 0 || len(k.SettingsKey) == 0 {
		return nil, errors.New("key bundle: a domain name and all four keys are needed")
	}
	h := header{
		Format: Format, Domain: k.Domain, KDF: "argon2id",
		Time: argonTime, Memory: argonMemory, Threads: argonThreads,
		Salt: make([]byte, saltSize), Nonce: make([]byte, chacha20poly1305.NonceSizeX),
	}
	rand.Read(h.Salt)
	rand.Read(h.Nonce)
	aead, err := chacha20poly1305.NewX(h.key(passphrase))
	if err != nil {
		return nil, fmt.Errorf("key bundle: %w", err)
	}
	plain, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("key bundle: %w", err)
	}
	out, err := json.MarshalIndent(file{header: h, Sealed: aead.Seal(nil, h.Nonce, plain, h.additionalData())}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("key bundle: %w", err)
	}
	return append(out, '\n'), nil
}

// Domain returns the domain a bundle says it is of, without opening it:
// to name a wrong file before asking for anything.
func Domain(data []byte) (string, error) {
	f, err := parse(data)
	if err != nil {
		return "", err
	}
	return f.Domain, nil
}

func parse(data []byte) (file, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return file{}, fmt.Errorf("not a key bundle: %w", err)
	}
	switch {
	case f.Format != Format:
		return file{}, fmt.Errorf("not a key bundle of this gatehouse: format %q, want %q", f.Format, Format)
	case f.KDF != "argon2id":
		return file{}, fmt.Errorf("key bundle: key derivation %q, want argon2id", f.KDF)
	case f.Time == 0 || f.Time > maxTime || f.Memory < 8*uint32(max(f.Threads, 1)) || f.Memory > maxMemory || f.Threads == 0:
		return file{}, fmt.Errorf("key bundle: argon2id parameters out of range (time %d, memory %d KiB, threads %d)", f.Time, f.Memory, f.Threads)
	case len(f.Salt) < saltSize || len(f.Nonce) != chacha20poly1305.NonceSizeX:
		return file{}, errors.New("key bundle: bad salt or nonce")
	}
	return f, nil
}

// Open decrypts a bundle with passphrase.
func Open(data, passphrase []byte) (Keys, error) {
	f, err := parse(data)
	if err != nil {
		return Keys{}, err
	}
	aead, err := chacha20poly1305.NewX(f.key(passphrase))
	if err != nil {
		return Keys{}, fmt.Errorf("key bundle: %w", err)
	}
	plain, err := aead.Open(nil, f.Nonce, f.Sealed, f.header.additionalData())
	if err != nil {
		return Keys{}, ErrOpen
	}
	var k Keys
	if err := json.Unmarshal(plain, &k); err != nil {
		return Keys{}, fmt.Errorf("key bundle: sealed content: %w", err)
	}
	if k.Domain != f.Domain {
		return Keys{}, ErrOpen
	}
	return k, nil
}
