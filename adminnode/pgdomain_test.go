package adminnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/keybundle"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/adminnode/store/pgstore"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/waitfor"
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

// execSQL runs statements on the database at dsn, as a test preparing or
// inspecting it.
func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// domainRows counts the rows init writes, table by table.
func domainRows(t *testing.T, dsn string) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := map[string]int{}
	for _, table := range []string{"domain", "roles", "users", "role_bindings", "audit"} {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// An init whose writes to the database fail part of the way — each table
// init writes refusing its rows in turn, by a trigger made beforehand —
// leaves no domain and no file, says that running it again is all there
// is to do, and the same init then succeeds on the same database and data
// dir.
func TestInitPostgresAtomic(t *testing.T) {
	ctx := context.Background()
	for _, table := range []string{"domain", "roles", "users", "role_bindings", "audit"} {
		t.Run("refused in "+table, func(t *testing.T) {
			dsn := pgtest.Need(t, pg)
			// The schema first, so that the trigger has its table.
			s, err := pgstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			execSQL(t, dsn, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
				$$BEGIN RAISE EXCEPTION 'refused by the test'; END$$;
				CREATE TRIGGER refuse BEFORE INSERT ON `+table+` FOR EACH ROW EXECUTE FUNCTION refuse()`)
			dir := filepath.Join(t.TempDir(), "data")
			opts := InitOptions{DataDir: dir, Domain: "acme", Store: dsn, PasswordCost: testCost}
			_, err = Init(ctx, opts)
			if err == nil {
				t.Fatal("init succeeded")
			}
			for _, want := range []string{"nothing was written to the database", "run the same init again", "refused by the test"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "drop") {
				t.Errorf("err = %v: advises dropping the database", err)
			}
			for tbl, n := range domainRows(t, dsn) {
				if n != 0 {
					t.Errorf("a failed init left %d rows in %s", n, tbl)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a failed init left %d files in the data dir", len(entries))
			}

			execSQL(t, dsn, "DROP TRIGGER refuse ON "+table)
			if _, err := Init(ctx, opts); err != nil {
				t.Fatalf("init again: %v", err)
			}
			st, d, err := openDomainStore(ctx, dir, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, _, err := loadKeys(dir, d); err != nil {
				t.Errorf("the keys are not the domain's: %v", err)
			}
			if _, err := st.GetUser(ctx, AdminUser); err != nil {
				t.Error(err)
			}
			// The failed init's audit number went with it.
			if audit, err := st.ListAudit(ctx, store.AuditFilter{}); err != nil || len(audit) != 1 || audit[0].Seq != 1 {
				t.Errorf("audit after init again: %+v %v, want domain.init numbered 1", audit, err)
			}
		})
	}
}

// Key files without the marker, beside a database without a domain, are
// what an init stopped before its commit (a crash) left: init refuses
// them, saying so, and succeeds once they are deleted. The marker is a
// domain's, whatever the database holds.
func TestInitPostgresRemains(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Need(t, pg)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CAKeyFile, CACertFile} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("left by a crash"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := InitOptions{DataDir: dir, Domain: "acme", Store: dsn, PasswordCost: testCost}
	_, err := Init(ctx, opts)
	if err == nil || !strings.Contains(err.Error(), "stopped before it created the domain in the database") ||
		!strings.Contains(err.Error(), "Delete these files and run init again") {
		t.Fatalf("err = %v, want the remains of an init explained", err)
	}
	for tbl, n := range domainRows(t, dsn) {
		if n != 0 {
			t.Errorf("a refused init wrote %d rows in %s", n, tbl)
		}
	}
	for _, name := range []string{CAKeyFile, CACertFile} {
		os.Remove(filepath.Join(dir, name))
	}
	if _, err := Init(ctx, opts); err != nil {
		t.Fatalf("init once the remains are deleted: %v", err)
	}

	marked := filepath.Join(t.TempDir(), "marked")
	if err := os.MkdirAll(marked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(marked, PostgresMarkerFile), []byte(postgresMarker), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Init(ctx, InitOptions{DataDir: marked, Domain: "acme", Store: pg.Database(t), PasswordCost: testCost})
	if err == nil || !strings.Contains(err.Error(), "already holds a domain") {
		t.Errorf("init on a marked data dir: %v", err)
	}
}

// The database going away while init commits leaves the outcome unknown
// to init: it keeps the key files and says what to do either way. Once
// the database is back and holds no domain, init again explains the
// files as the remains of an init, and succeeds once they are deleted.
func TestInitPostgresDatabaseGone(t *testing.T) {
	ctx := context.Background()
	pgtest.Need(t, pg)
	// A server of its own, to stop.
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	dsn := srv.Database(t)
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The commit runs a deferred trigger that waits, for the server to be
	// stopped under it.
	execSQL(t, dsn, `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN PERFORM pg_sleep(60); RETURN NULL; END$$;
		CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON audit DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION slow()`)
	dir := filepath.Join(t.TempDir(), "data")
	opts := InitOptions{DataDir: dir, Domain: "acme", Store: dsn, PasswordCost: testCost}
	done := make(chan error, 1)
	go func() {
		_, err := Init(ctx, opts)
		done <- err
	}()
	waitfor.Cond(t, 20*time.Second, "init committing", func() (bool, string) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close(ctx)
		var n int
		err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'commit%'").Scan(&n)
		return err == nil && n == 1, fmt.Sprintf("%d committing (%v)", n, err)
	})
	srv.Halt()
	err = <-done
	t.Logf("init said: %v", err)
	if err == nil || !strings.Contains(err.Error(), "does not answer whether it holds the domain") ||
		!strings.Contains(err.Error(), "The key files are kept in "+dir) {
		t.Fatalf("err = %v, want the outcome said to be unknown and the keys kept", err)
	}
	for _, name := range []string{CAKeyFile, CACertFile, SigningKeyFile, SettingsKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("a key file is gone: %v", err)
		}
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	for tbl, n := range domainRows(t, dsn) {
		if n != 0 {
			t.Errorf("the interrupted commit left %d rows in %s", n, tbl)
		}
	}
	execSQL(t, dsn, "DROP TRIGGER slow ON audit")
	if _, err := Init(ctx, opts); err == nil || !strings.Contains(err.Error(), "stopped before it created the domain in the database") {
		t.Fatalf("init again: %v, want the remains explained", err)
	}
	for _, name := range []string{CAKeyFile, CACertFile, SigningKeyFile, SettingsKeyFile} {
		os.Remove(filepath.Join(dir, name))
	}
	if _, err := Init(ctx, opts); err != nil {
		t.Fatalf("init once the remains are deleted: %v", err)
	}
}
