package adminnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
