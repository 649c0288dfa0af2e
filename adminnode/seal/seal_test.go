package seal

import (
	"bytes"
	"errors"
	"testing"
)

func mustKey(t *testing.T, file []byte) *Key {
	t.Helper()
	k, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	file := NewKeyFile()
	if len(file) != KeySize || bytes.Equal(file, NewKeyFile()) {
		t.Fatalf("key file %x", file)
	}
	k := mustKey(t, file)
	value := []byte("s3cret password")
	sealed := k.Seal("prod", "DB_PASSWORD", value)
	if bytes.Contains(sealed, value) {
		t.Fatal("sealed value holds the value in clear")
	}
	if again := k.Seal("prod", "DB_PASSWORD", value); bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	got, err := k.Open("prod", "DB_PASSWORD", sealed)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// The same file gives the same key (a restart).
	if got, err := mustKey(t, bytes.Clone(file)).Open("prod", "DB_PASSWORD", sealed); err != nil || !bytes.Equal(got, value) {
		t.Errorf("Open with the key parsed again = %q, %v", got, err)
	}
	if got, err := k.Open("uat", "EMPTY", k.Seal("uat", "EMPTY", nil)); err != nil || len(got) != 0 {
		t.Errorf("empty value: %q, %v", got, err)
	}
}

// A value opens only with its key, at its place, undamaged.
func TestOpenRefuses(t *testing.T) {
	k := mustKey(t, NewKeyFile())
	sealed := k.Seal("prod", "DB_PASSWORD", []byte("v"))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	newer := bytes.Clone(sealed)
	newer[0] = version + 1
	for _, tt := range []struct {
		what        string
		key         *Key
		env, secret string
		sealed      []byte
	}{
		{"another key", mustKey(t, NewKeyFile()), "prod", "DB_PASSWORD", sealed},
		{"another environment", k, "uat", "DB_PASSWORD", sealed},
		{"another name", k, "prod", "API_KEY", sealed},
		{"names shifted", k, "prod\x00DB", "PASSWORD", sealed},
		{"damaged", k, "prod", "DB_PASSWORD", flipped},
		{"unknown format", k, "prod", "DB_PASSWORD", newer},
		{"truncated", k, "prod", "DB_PASSWORD", sealed[:10]},
		{"empty", k, "prod", "DB_PASSWORD", nil},
	} {
		if _, err := tt.key.Open(tt.env, tt.secret, tt.sealed); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: error %v, want ErrOpen", tt.what, err)
		}
	}
}

func TestParseRefusesBadFiles(t *testing.T) {
	for _, file := range [][]byte{nil, make([]byte, KeySize-1), make([]byte, KeySize+1), append(NewKeyFile(), '\n')} {
		if _, err := Parse(file); err == nil {
			t.Errorf("Parse of %d bytes succeeded", len(file))
		}
	}
}
