package pubseal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t *testing.T) *Key {
	t.Helper()
	k, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const deployment = `{"domain":"acme","group":"web","number":3,"config":{"secret":"hunter2-in-config"},"signature":"c2ln"}`

func TestSealOpen(t *testing.T) {
	k1, k2, other := mustKey(t), mustKey(t), mustKey(t)
	obj, err := Seal(k1, "acme", "web", []byte(deployment))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(obj, []byte("hunter2")) || bytes.Contains(obj, []byte("acme")) || bytes.Contains(obj, []byte(`"number"`)) {
		t.Fatalf("the sealed object shows what it holds: %s", obj)
	}
	if id, err := KeyID(obj); err != nil || id != k1.ID {
		t.Fatalf("KeyID = %q, %v; want %q", id, err, k1.ID)
	}
	var e envelope
	if err := json.Unmarshal(obj, &e); err != nil {
		t.Fatal(err)
	}
	e.Sealed[len(e.Sealed)/2] ^= 1
	tampered, _ := json.Marshal(e)

	for _, tc := range []struct {
		name          string
		keys          []*Key
		domain, group string
		obj           []byte
		want          error
	}{
		{"round trip", []*Key{k1}, "acme", "web", obj, nil},
		{"rotated: the previous key still opens", []*Key{k2, k1}, "acme", "web", obj, nil},
		{"moved to another group", []*Key{k1}, "acme", "api", obj, ErrOpen},
		{"of another domain", []*Key{k1}, "other", "web", obj, ErrOpen},
		{"tampered", []*Key{k1}, "acme", "web", tampered, ErrOpen},
		{"wrong key", []*Key{other}, "acme", "web", obj, ErrUnknownKey},
		{"no key", nil, "acme", "web", obj, ErrUnknownKey},
		{"a deployment in clear", []*Key{k1}, "acme", "web", []byte(deployment), ErrNotSealed},
		{"not JSON", []*Key{k1}, "acme", "web", []byte("\x00\x01garbage"), ErrNotSealed},
		{"another format", []*Key{k1}, "acme", "web", []byte(`{"format":"x","key":"a","sealed":"AA=="}`), ErrNotSealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, id, err := Open(tc.keys, tc.domain, tc.group, tc.obj)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if got != nil {
					t.Errorf("Open returned content with an error: %q", got)
				}
				return
			}
			if string(got) != deployment || id != k1.ID {
				t.Errorf("Open = %q, %q", got, id)
			}
		})
	}
}

func TestSealIsRandomized(t *testing.T) {
	k := mustKey(t)
	a, _ := Seal(k, "acme", "web", []byte(deployment))
	b, _ := Seal(k, "acme", "web", []byte(deployment))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same deployment are equal: the nonce is not random")
	}
}

func TestParseKey(t *testing.T) {
	if _, err := ParseKey(make([]byte, 31)); err == nil || !strings.Contains(err.Error(), "31 bytes, want 32") {
		t.Errorf("short key: %v", err)
	}
	raw := NewKey()
	a, _ := ParseKey(raw)
	b, _ := ParseKey(raw)
	if a.ID != b.ID || len(a.ID) != 16 || !bytes.Equal(a.Bytes(), raw) {
		t.Errorf("IDs %q %q", a.ID, b.ID)
	}
	if strings.Contains(string(raw), a.ID) {
		t.Error("the ID is part of the key")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := mustKey(t), mustKey(t)
	path := filepath.Join(dir, "publish.key")
	if err := WriteKeyFile(path, "acme", []*Key{k1, k2}); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(path, "acme", []*Key{k1}); err == nil {
		t.Error("an existing key file was replaced")
	}
	domain, keys, err := ReadKeyFile(path)
	if err != nil || domain != "acme" || len(keys) != 2 || keys[0].ID != k1.ID || keys[1].ID != k2.ID {
		t.Fatalf("ReadKeyFile = %q, %v, %v", domain, keys, err)
	}

	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	open := write("open", `{"domain":"acme","keys":["`+strings.Repeat("A", 43)+`="]}`, 0o644)
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "none"), "no such file"},
		{"readable by others", open, "mode 0644 lets other users read or change it"},
		{"a link", link, "not a regular file"},
		{"not JSON", write("garbage", "secret-looking-garbage", 0o600), "not a key file"},
		{"no domain", write("nodomain", `{"keys":["`+strings.Repeat("A", 43)+`="]}`, 0o600), "no domain"},
		{"no key", write("nokey", `{"domain":"acme","keys":[]}`, 0o600), "no key"},
		{"short key", write("short", `{"domain":"acme","keys":["AAAA"]}`, 0o600), "3 bytes, want 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadKeyFile(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadKeyFile: %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-looking") {
				t.Errorf("the error quotes the file: %v", err)
			}
		})
	}
}
