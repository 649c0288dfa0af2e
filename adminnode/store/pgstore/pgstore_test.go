package pgstore

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/adminnode/store/storetest"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// pg is the package's PostgreSQL server; nil where it is not installed.
var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

var ctx = context.Background()

// openAt opens the store of dsn, closed when t ends.
func openAt(t *testing.T, dsn string) *PG {
	t.Helper()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openNew(t *testing.T) store.Store { return openAt(t, pgtest.Need(t, pg)) }

// TestContract runs the store contract against PostgreSQL.
func TestContract(t *testing.T) { storetest.Run(t, openNew) }

// TestTrafficContract runs the traffic contract against PostgreSQL.
func TestTrafficContract(t *testing.T) { storetest.RunTraffic(t, openNew) }

// A store opened again on the same database (an admin node restarted, or
// a second one) sees everything, and numbers continue.
func TestReopen(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	s := openAt(t, dsn)
	if err := s.InitDomain(ctx, store.Domain{Name: "prod", SigningPublicKey: []byte{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	d, err := s.PutDraft(ctx, "edge", deploy.Config{}, 0, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Freeze(ctx, "edge", d.Version, plainBuild); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, store.AuditEntry{User: "ann", Action: "deploy"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openAt(t, dsn)
	if dom, err := s2.GetDomain(ctx); err != nil || dom.Name != "prod" {
		t.Errorf("domain after reopen %+v, %v", dom, err)
	}
	if e, err := s2.AppendAudit(ctx, store.AuditEntry{User: "ann"}); err != nil || e.Seq != 2 {
		t.Errorf("audit seq after reopen %d, %v", e.Seq, err)
	}
	if dep, err := s2.Freeze(ctx, "edge", d.Version, plainBuild); err != nil || dep.Number != 2 {
		t.Errorf("deployment number after reopen %d, %v", dep.Number, err)
	}
}

func plainBuild(d store.Draft, _ uint64) (store.Deployment, error) {
	body, err := d.Config.Canonical()
	return store.Deployment{Config: body, Author: "ann"}, err
}

// schemaVersionOf reads the database's schema version.
func schemaVersionOf(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A database written by a newer binary is refused and left as it is.
func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	openAt(t, dsn).Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	newer := SchemaVersion() + 1
	if _, err := conn.Exec(ctx, "UPDATE schema_version SET version = $1", newer); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, dsn); !errors.Is(err, store.ErrNewerSchema) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open of a schema %d database: %v, want ErrNewerSchema", newer, err)
	}
	if v := schemaVersionOf(t, dsn); v != newer {
		t.Errorf("schema version %d after a refused open, want %d untouched", v, newer)
	}
}

// Admin nodes starting together on a new database migrate it once: every
// one opens, and the schema is the binary's.
func TestConcurrentMigration(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	const nodes = 4
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() {
			s, err := Open(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	if v := schemaVersionOf(t, dsn); v != SchemaVersion() {
		t.Errorf("schema version %d, want %d", v, SchemaVersion())
	}
}

// The embedded migrations are numbered from 1 without gaps.
func TestMigrationsNumbered(t *testing.T) {
	m, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 || SchemaVersion() != len(m) {
		t.Fatalf("%d migrations, schema version %d", len(m), SchemaVersion())
	}
}

// Two admin nodes (two stores, two pools) on one database deploy one
// group at the same time: numbers without gap or duplicate, each
// deployment signed over what it stored.
func TestTwoNodesDeploy(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	a, b := openAt(t, dsn), openAt(t, dsn)
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	d, err := b.PutDraft(ctx, "edge", deploy.Config{}, 0, "ann")
	if err != nil {
		t.Fatal(err)
	}
	const each = 15
	var wg sync.WaitGroup
	for n, s := range []*PG{a, b} {
		wg.Go(func() {
			for i := range each {
				author := fmt.Sprintf("node%d-%d", n, i)
				_, err := s.Freeze(ctx, "edge", d.Version, func(d store.Draft, number uint64) (store.Deployment, error) {
					dep, err := deploy.NewDeployment("prod", "edge", number, &d.Config, author, "", time.Now(), nil)
					if err != nil {
						return store.Deployment{}, err
					}
					dep.Sign(key)
					return store.Deployment{Checksum: dep.Checksum, Config: dep.Config, Signature: dep.Signature, Author: author, CreatedAt: dep.CreatedAt}, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	deps, err := a.ListDeployments(ctx, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 2*each {
		t.Fatalf("%d deployments, want %d", len(deps), 2*each)
	}
	for i, dep := range deps {
		if dep.Number != uint64(2*each-i) {
			t.Fatalf("position %d holds deployment %d", i, dep.Number)
		}
		signed := deploy.Deployment{Domain: "prod", Group: "edge", Number: dep.Number, Checksum: dep.Checksum,
			Config: dep.Config, Author: dep.Author, CreatedAt: dep.CreatedAt, Signature: dep.Signature}
		if err := signed.Verify(pub, nil); err != nil {
			t.Errorf("deployment %d: %v", dep.Number, err)
		}
	}
}

// After 30 days without traffic a series leaves the group's dictionary
// with its last points, and its labels stop counting against the limits.
func TestSeriesForgotten(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	s := openAt(t, dsn)
	if _, err := s.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	b := traffic.Batch{Node: "h1", Seq: 1, Start: t0, End: t0.Add(10 * time.Second), Series: []traffic.DomainSeries{{
		Group: "edge", Instance: "i1", Series: traffic.Series{Key: traffic.Key{Service: "svc", Route: "r1", Class: traffic.Class2xx},
			Counts: traffic.Counts{Requests: 3}}}}}
	if _, err := s.IngestTraffic(ctx, b, store.TrafficLimits{MaxRoutes: 10, MaxConsumers: 10}, t0); err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		t.Helper()
		if err := s.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM traffic_series) + (SELECT count(*) FROM traffic_labels) + (SELECT count(*) FROM traffic_fine) + (SELECT count(*) FROM traffic_coarse)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("%d series, labels and points after one batch, want 3", n)
	}
	for _, at := range []time.Duration{time.Hour, 31 * 24 * time.Hour, 38 * 24 * time.Hour} {
		if _, err := s.MaintainTraffic(ctx, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 0 {
		t.Errorf("%d series, labels or points left after 31 days", n)
	}
}

// A connection string's password never shows in Open's errors: they end
// up in logs.
func TestOpenErrorsHidePassword(t *testing.T) {
	const secret = "s3cret-pw"
	for name, dsn := range map[string]string{
		"bad option":  "postgres://ann:" + secret + "@127.0.0.1:1/db?sslmode=sometimes",
		"unreachable": "postgres://ann:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"key=value":   "host=/nonexistent user=ann password=" + secret + " dbname=db connect_timeout=2",
	} {
		s, err := Open(ctx, dsn)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
}

// While the database is away every call fails, promptly and without
// effect; once it is back the same store works again, with everything
// committed before and nothing of the failed calls.
func TestDatabaseAway(t *testing.T) {
	if pg == nil {
		t.Skip(pgtest.ErrNotInstalled)
	}
	// A server of its own: this test stops it.
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop) // after the database is dropped: cleanups run last first
	s := openAt(t, srv.Database(t))
	if _, err := s.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	d, err := s.PutDraft(ctx, "edge", deploy.Config{}, 0, "ann")
	if err != nil {
		t.Fatal(err)
	}
	srv.Halt()
	for name, call := range map[string]func(context.Context) error{
		"read": func(c context.Context) error { _, err := s.GetGroup(c, "edge"); return err },
		"draft": func(c context.Context) error {
			_, err := s.PutDraft(c, "edge", deploy.Config{}, d.Version, "bob")
			return err
		},
		"deploy": func(c context.Context) error { _, err := s.Freeze(c, "edge", d.Version, plainBuild); return err },
		"audit":  func(c context.Context) error { _, err := s.AppendAudit(c, store.AuditEntry{User: "ann"}); return err },
	} {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		start := time.Now()
		err := call(c)
		cancel()
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			t.Errorf("%s with the database away: %v, want a connection error", name, err)
		}
		// The admin API answers these 503, retryable, not 500.
		if !s.Unreachable(err) {
			t.Errorf("%s with the database away: %v (%T) is not reported unreachable", name, err, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %s", name, took)
		}
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDraft(ctx, "edge")
	if err != nil {
		t.Fatalf("read after the database came back: %v", err)
	}
	if got.Version != d.Version || got.UpdatedBy != "ann" {
		t.Errorf("draft %+v after the outage, want version %d by ann", got, d.Version)
	}
	if _, err := s.LatestDeployment(ctx, "edge"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a deployment exists after a failed deploy: %v", err)
	}
	if l, err := s.ListAudit(ctx, store.AuditFilter{}); err != nil || len(l) != 0 {
		t.Errorf("audit after a failed append: %v, %v", l, err)
	}
	if _, err := s.Freeze(ctx, "edge", d.Version, plainBuild); err != nil {
		t.Errorf("deploy after the database came back: %v", err)
	}
	// What the database refuses is no outage.
	for name, call := range map[string]func() error{
		"missing group":   func() error { _, err := s.GetGroup(ctx, "nowhere"); return err },
		"duplicate group": func() error { _, err := s.CreateGroup(ctx, store.Group{Name: "edge"}); return err },
		"stale draft":     func() error { _, err := s.PutDraft(ctx, "edge", deploy.Config{}, d.Version+7, "bob"); return err },
		"cancelled": func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := s.GetGroup(c, "edge")
			return err
		},
	} {
		if err := call(); err == nil || s.Unreachable(err) {
			t.Errorf("%s: %v reported as the database unreachable", name, err)
		}
	}
}
