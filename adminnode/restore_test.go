package adminnode

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/backup"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/keybundle"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/backupfile"
	"github.com/gatehouse/gatehouse/objstore"
)

// backedUp makes domain acme in a data dir and a backup of it in a
// bucket; it returns the data dir and the backup's URL.
func backedUp(t *testing.T) (string, string) {
	dir, from, _ := backedUpRotated(t, false)
	return dir, from
}

// backedUpRotated is backedUp, with a CA rotation made before the backup
// when rotate is set; it also returns the authority's trust id then.
func backedUpRotated(t *testing.T, rotate bool) (string, string, string) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "orig")
	initDomain(t, dir, "acme", "a long password 1")
	s, d, err := openStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	root, key, err := loadKeys(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	var trust string
	if rotate {
		srv := apiServer(t, dir, s, d, root, key)
		if _, err := srv.RotateCA(ctx); err != nil {
			t.Fatal(err)
		}
		trust = srv.Authority().TrustID()
	}
	var buf bytes.Buffer
	if _, err := backup.Write(ctx, &buf, s, d.Name, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	bdir := t.TempDir()
	bucket, err := objstore.OpenDir(bdir)
	if err != nil {
		t.Fatal(err)
	}
	name := backupfile.ObjectName(d.Name, time.Now())
	if _, err := backupfile.Upload(ctx, bucket, name, &buf, backupfile.Expect{Domain: d.Name, Key: key.Public().(ed25519.PublicKey)}); err != nil {
		t.Fatal(err)
	}
	return dir, "file://" + bdir + "/" + name, trust
}

// apiServer is the admin API of the domain in dir, as admin run makes it.
func apiServer(t *testing.T, dir string, s store.Store, d store.Domain, root *ca.CA, key ed25519.PrivateKey) *api.Server {
	t.Helper()
	sk, err := loadSettingsKey(context.Background(), dir, s, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Store: s, Domain: d, SigningKey: key, SettingsKey: sk, CA: root})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// A backup carries the roots of a CA rotation: restored with the key
// bundle of the data dir, whose ca.crt is the root of admin init, the
// domain's CA is both roots, the new one issuing.
func TestRestoreRotatedCA(t *testing.T) {
	ctx := context.Background()
	orig, from, trust := backedUpRotated(t, true)
	keys, err := ExportKeys(orig)
	if err != nil {
		t.Fatal(err)
	}
	pass := []byte("a long bundle passphrase")
	bundle, err := keybundle.Seal(keys, pass)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(ctx, RestoreOptions{From: from, DataDir: dir, Bundle: bundle, Passphrase: pass}); err != nil {
		t.Fatal(err)
	}
	s, d, err := openStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	root, key, err := loadKeys(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	a := apiServer(t, dir, s, d, root, key).Authority()
	if !a.Rotating() || a.TrustID() != trust || a.Fingerprint() != root.Fingerprint() || a.Issuer().Fingerprint() == root.Fingerprint() {
		t.Errorf("restored CA: trust %s (want %s), rotating %v, presents %s", a.TrustID(), trust, a.Rotating(), a.Fingerprint())
	}
}

func copyKeyFiles(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CACertFile, CAKeyFile, SigningKeyFile, SettingsKeyFile} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// The keys come from the data dir or from a key bundle; the restored data
// dir opens as the domain's.
func TestRestoreKeys(t *testing.T) {
	ctx := context.Background()
	orig, from := backedUp(t)
	keys, err := ExportKeys(orig)
	if err != nil {
		t.Fatal(err)
	}
	pass := []byte("a long bundle passphrase")
	bundle, err := keybundle.Seal(keys, pass)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		prep func(dir string) RestoreOptions
	}{
		{"keys copied", func(dir string) RestoreOptions {
			copyKeyFiles(t, orig, dir)
			return RestoreOptions{From: from, DataDir: dir}
		}},
		{"key bundle", func(dir string) RestoreOptions {
			return RestoreOptions{From: from, DataDir: dir, Bundle: bundle, Passphrase: pass}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "restored")
			res, err := Restore(ctx, tc.prep(dir))
			if err != nil {
				t.Fatal(err)
			}
			if res.Summary.Domain != "acme" || res.Summary.Counts[store.KindUser] != 1 {
				t.Errorf("summary %+v", res.Summary)
			}
			s, d, err := openStore(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, _, err := loadKeys(dir, d); err != nil {
				t.Errorf("restored data dir: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, restoreStagingFile)); !os.IsNotExist(err) {
				t.Errorf("staging file left: %v", err)
			}
		})
	}
}

// What Restore refuses, each with nothing left behind.
func TestRestoreRefusals(t *testing.T) {
	ctx := context.Background()
	orig, from := backedUp(t)
	other, _ := backedUp(t) // another domain acme, with other keys
	keys, err := ExportKeys(orig)
	if err != nil {
		t.Fatal(err)
	}
	pass := []byte("a long bundle passphrase")
	bundle, err := keybundle.Seal(keys, pass)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		prep func(dir string) RestoreOptions
		want string
		// left are the files the data dir must hold afterwards.
		left int
	}{
		{"no keys", func(dir string) RestoreOptions {
			os.MkdirAll(dir, 0o700)
			return RestoreOptions{From: from, DataDir: dir}
		}, "restore needs the domain's keys", 0},
		{"another domain's keys", func(dir string) RestoreOptions {
			copyKeyFiles(t, other, dir)
			return RestoreOptions{From: from, DataDir: dir}
		}, "backup of another domain", 4},
		{"a domain there already", func(dir string) RestoreOptions {
			initDomain(t, dir, "acme", "a long password 1")
			return RestoreOptions{From: from, DataDir: dir}
		}, "already holds a domain", 5},
		{"bundle into a data dir with keys", func(dir string) RestoreOptions {
			copyKeyFiles(t, orig, dir)
			return RestoreOptions{From: from, DataDir: dir, Bundle: bundle, Passphrase: pass}
		}, "needs an empty data dir", 4},
		{"wrong passphrase", func(dir string) RestoreOptions {
			return RestoreOptions{From: from, DataDir: dir, Bundle: bundle, Passphrase: []byte("another long passphrase")}
		}, "does not open", 0},
		{"not an object URL", func(dir string) RestoreOptions {
			copyKeyFiles(t, orig, dir)
			return RestoreOptions{From: "file:///", DataDir: dir}
		}, "give the URL of one backup", 4},
		{"missing backup", func(dir string) RestoreOptions {
			copyKeyFiles(t, orig, dir)
			return RestoreOptions{From: from + ".gone", DataDir: dir}
		}, "read backup", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			_, err := Restore(ctx, tc.prep(dir))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %v, want an error saying %q", err, tc.want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != tc.left {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("data dir holds %v after the refusal, want %d files", names, tc.left)
			}
		})
	}
}
