package adminnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/keybundle"
	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// A data dir and a store connection string that do not go together are
// refused before any database is reached.
func TestOpenDomainStoreRefusesMismatch(t *testing.T) {
	bolt := filepath.Join(t.TempDir(), "data")
	initDomain(t, bolt, "acme", "correct horse battery")
	pg := t.TempDir()
	for _, name := range []string{CAKeyFile, CACertFile, SigningKeyFile, SettingsKeyFile} {
		data, err := os.ReadFile(filepath.Join(bolt, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pg, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(pg, PostgresMarkerFile), []byte(postgresMarker), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing listens there: reaching it would fail differently.
	const dsn = "host=/nonexistent port=1 user=u password=hunter2hunter2 dbname=d"
	for _, tc := range []struct {
		name, dir, dsn, want string
	}{
		{"admin.db with a connection string", bolt, dsn, "not in PostgreSQL"},
		{"marker without a connection string", pg, "", "kept in PostgreSQL"},
		{"empty dir with a connection string", t.TempDir(), dsn, "no domain in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, err := openDomainStore(context.Background(), tc.dir, tc.dsn)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("err = %v, want it to say %q and not the password", err, tc.want)
			}
		})
	}
	if _, err := Init(context.Background(), InitOptions{DataDir: pg, Domain: "acme", PasswordCost: testCost}); err == nil || !strings.Contains(err.Error(), "already holds a domain") {
		t.Errorf("init on a data dir of a domain in PostgreSQL: %v", err)
	}
}

// A connection string that does not parse is not repeated in the error:
// it may hold a password.
func TestOpenPostgresHidesConnectionString(t *testing.T) {
	_, err := openPostgres(context.Background(), "postgres://u:hunter2hunter2@host:notaport/db")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err = %v", err)
	}
}

// Two inits on one database at once make one domain; the other fails
// saying so, and leaves nothing in its data dir.
func TestInitPostgresConcurrent(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	errs := make(chan error, len(dirs))
	for _, dir := range dirs {
		go func() {
			_, err := Init(context.Background(), InitOptions{DataDir: dir, Domain: "acme", Store: dsn, PasswordCost: testCost})
			errs <- err
		}()
	}
	var failed []error
	for range dirs {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "already holds") {
		t.Fatalf("errors %v, want exactly one saying the database already holds a domain", failed)
	}
	var made int
	for _, dir := range dirs {
		entries, _ := os.ReadDir(dir)
		switch len(entries) {
		case 0:
		case 5:
			made++
		default:
			t.Errorf("%s holds %d files, want the four keys and the marker, or nothing", dir, len(entries))
		}
	}
	if made != 1 {
		t.Errorf("%d data dirs hold a domain, want 1", made)
	}
}

// Join writes a bundle's keys only for the domain the database holds.
func TestJoinChecksTheDatabase(t *testing.T) {
	ctx := context.Background()
	dsn, otherDSN, emptyDSN := pgtest.Need(t, pg), pg.Database(t), pg.Database(t)
	first, other := filepath.Join(t.TempDir(), "first"), filepath.Join(t.TempDir(), "other")
	for _, c := range []struct{ dir, dsn, domain string }{{first, dsn, "acme"}, {other, otherDSN, "acme"}} {
		if _, err := Init(ctx, InitOptions{DataDir: c.dir, Domain: c.domain, Store: c.dsn, PasswordCost: testCost}); err != nil {
			t.Fatal(err)
		}
	}
	pass := []byte("a long enough passphrase")
	bundle := func(dir string) []byte {
		k, err := ExportKeys(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := keybundle.Seal(k, pass)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		bundle []byte
		dsn    string
		want   string
	}{
		// Same name, another CA and signing key: the name is not enough.
		{"another domain of the same name", bundle(other), dsn, "refusing to join"},
		{"a database without a domain", bundle(first), emptyDSN, "holds no domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "joined")
			_, err := Join(ctx, JoinOptions{DataDir: dir, Store: tc.dsn, Bundle: tc.bundle, Passphrase: pass})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused join left %d files", len(entries))
			}
		})
	}
	dir := filepath.Join(t.TempDir(), "joined")
	res, err := Join(ctx, JoinOptions{DataDir: dir, Store: dsn, Bundle: bundle(first), Passphrase: pass})
	if err != nil || res.Domain != "acme" {
		t.Fatalf("join: %+v %v", res, err)
	}
	s, d, err := openDomainStore(ctx, dir, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := loadKeys(dir, d); err != nil {
		t.Errorf("the joined data dir's keys are not the domain's: %v", err)
	}
}
