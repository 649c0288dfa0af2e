package adminnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// withStore runs fn on the data dir's store while no admin node runs.
func withStore(t *testing.T, dir string, fn func(s store.Store)) {
	t.Helper()
	s, err := store.Open(filepath.Join(dir, StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fn(s)
}

func putSecret(t *testing.T, s store.Store, key *seal.Key) {
	t.Helper()
	_, err := s.PutSecret(context.Background(), store.Secret{Environment: "prod", Name: "DB_PASSWORD", Sealed: key.Seal("prod", "DB_PASSWORD", []byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
}

// A domain made before settings.key existed gets one at its next start.
func TestRunCreatesSettingsKey(t *testing.T) {
	dir := t.TempDir()
	initDomain(t, dir, "acme", "")
	path := filepath.Join(dir, SettingsKeyFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, stop := startRun(t, RunOptions{DataDir: dir})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no settings key after start: %v", err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != seal.KeySize {
		t.Errorf("settings key: mode %v, %d bytes", fi.Mode(), fi.Size())
	}
}

// A missing settings.key is not replaced while secrets need it; a
// replaced one does not stop the node.
func TestRunSettingsKeyAndSecrets(t *testing.T) {
	dir := t.TempDir()
	initDomain(t, dir, "acme", "")
	path := filepath.Join(dir, SettingsKeyFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := seal.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	withStore(t, dir, func(s store.Store) { putSecret(t, s, key) })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), RunOptions{DataDir: dir, Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "is missing, but the store holds 1 environment secrets sealed with it: restore it") {
		t.Fatalf("Run without settings.key: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("Run made a new settings key over secrets sealed with the lost one")
	}
	// A key made by hand, as docs/admin-node.md says for a lost one.
	if err := os.WriteFile(path, seal.NewKeyFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stop := startRun(t, RunOptions{DataDir: dir})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), RunOptions{DataDir: dir, Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "load settings key "+path+": settings key: 5 bytes, want 32") {
		t.Fatalf("Run with a bad settings.key: %v", err)
	}
}
