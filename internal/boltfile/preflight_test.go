package boltfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestPreflight(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	db, err := bolt.Open(good, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("b"))
		return b.Put([]byte("k"), []byte(strings.Repeat("v", 50000)))
	})
	db.Close()
	full, _ := os.ReadFile(good)

	tests := []struct {
		name    string
		content []byte // nil: no file
		ok      bool
	}{
		{"missing", nil, true},
		{"empty", []byte{}, true},
		{"good", full, true},
		{"cut short", full[:len(full)/2], false},
		{"not bbolt", []byte(strings.Repeat("garbage!", 2048)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			if tt.content != nil {
				os.WriteFile(path, tt.content, 0o600)
			}
			err := Preflight(path)
			if (err == nil) != tt.ok {
				t.Fatalf("Preflight = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
