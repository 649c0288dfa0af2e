package readyfile

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ready.json")
	if _, err := Read(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Read before Write: %v, want ErrNotExist", err)
	}
	for _, want := range []Addrs{
		{"listen": "127.0.0.1:40123", "status_listen": "127.0.0.1:40124"},
		{"listen": "127.0.0.1:40125"}, // a second write replaces the first
	} {
		if err := Hook(path)(want); err != nil {
			t.Fatal(err)
		}
		got, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("read %v, want %v", got, want)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d files, want the ready file alone (no temporary left)", len(entries))
	}
	if err := Hook("")(Addrs{"listen": "x"}); err != nil {
		t.Errorf("Hook without a path: %v", err)
	}
}
