package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/boltfile"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

func open(t testing.TB) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, path
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func cfg(upstream string) deploy.Config {
	return deploy.Config{Upstreams: []deploy.Upstream{{Name: upstream, Targets: []deploy.Target{{Address: "127.0.0.1:9001"}}}}}
}

// signer stands for the API's validate-encode-sign step.
func signer(author string) func(d Draft, number uint64) (Deployment, error) {
	return func(d Draft, number uint64) (Deployment, error) {
		body, err := d.Config.Canonical()
		if err != nil {
			return Deployment{}, err
		}
		sum, err := d.Config.Checksum()
		if err != nil {
			return Deployment{}, err
		}
		return Deployment{Config: body, Checksum: sum, Signature: []byte("sig"), Author: author}, nil
	}
}

func TestReopen(t *testing.T) {
	s, path := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge", CreatedAt: t0}))
	if err := s.InitDomain(ctx, Domain{Name: "prod", CreatedAt: t0, SigningPublicKey: []byte{1, 2}}); err != nil {
		t.Fatal(err)
	}
	must[Host](t)(s.CreateHost(ctx, Host{Name: "h1", Labels: map[string]string{"az": "a"}, CreatedAt: t0}))
	must[Instance](t)(s.CreateInstance(ctx, Instance{Name: "i1", Group: "edge", Host: "h1", CreatedAt: t0}))
	must[Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))
	must[Deployment](t)(s.Freeze(ctx, "edge", 1, signer("ann")))
	must[User](t)(s.CreateUser(ctx, User{Name: "ann", PasswordHash: "h", CreatedAt: t0}))
	must[Role](t)(s.CreateRole(ctx, Role{Name: "admin", Permissions: []string{"*"}, BuiltIn: true}))
	must[RoleBinding](t)(s.CreateRoleBinding(ctx, RoleBinding{User: "ann", Role: "admin", Scope: Scope{Domain: true}}))
	must[Token](t)(s.CreateToken(ctx, Token{User: "ann", SecretHash: "s"}))
	must[AuditEntry](t)(s.AppendAudit(ctx, AuditEntry{User: "ann", Action: "deploy", Result: AuditOK}))

	snapshot := func(s Store) map[string]any {
		t.Helper()
		return map[string]any{
			"domain":      must[Domain](t)(s.GetDomain(ctx)),
			"groups":      must[[]Group](t)(s.ListGroups(ctx)),
			"hosts":       must[[]Host](t)(s.ListHosts(ctx)),
			"instances":   must[[]Instance](t)(s.ListInstances(ctx, InstanceFilter{})),
			"draft":       must[Draft](t)(s.GetDraft(ctx, "edge")),
			"deployments": must[[]Deployment](t)(s.ListDeployments(ctx, "edge")),
			"users":       must[[]User](t)(s.ListUsers(ctx)),
			"roles":       must[[]Role](t)(s.ListRoles(ctx)),
			"bindings":    must[[]RoleBinding](t)(s.ListRoleBindings(ctx, "")),
			"tokens":      must[[]Token](t)(s.ListTokens(ctx, "")),
			"audit":       must[[]AuditEntry](t)(s.ListAudit(ctx, AuditFilter{})),
		}
	}
	before := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	after := snapshot(s2)
	for k := range before {
		if !reflect.DeepEqual(before[k], after[k]) {
			t.Errorf("%s after reopen:\n got %+v\nwant %+v", k, after[k], before[k])
		}
	}
	// Sequences continue rather than restart.
	if e := must[AuditEntry](t)(s2.AppendAudit(ctx, AuditEntry{User: "ann"})); e.Seq != 2 {
		t.Errorf("audit seq after reopen %d", e.Seq)
	}
	if d := must[Deployment](t)(s2.Freeze(ctx, "edge", 1, signer("ann"))); d.Number != 2 {
		t.Errorf("deployment number after reopen %d", d.Number)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	s, path := open(t)
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	newer := fmt.Sprint(SchemaVersion + 1)
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(boltfile.MetaBucket).Put(boltfile.SchemaKey, []byte(newer)) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("open of a schema %s file: %v, want ErrNewerSchema", newer, err)
	}
}

// reopenAtSchema makes the closed store file at path one of an older
// schema version, without the buckets that version did not have, and
// opens it again, closing it when the test ends.
func reopenAtSchema(t *testing.T, path, version string, drop ...[]byte) *Bolt {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, bk := range drop {
			if err := tx.DeleteBucket(bk); err != nil {
				return err
			}
		}
		return tx.Bucket(boltfile.MetaBucket).Put(boltfile.SchemaKey, []byte(version))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A version 1 file (no instance states) upgrades in place and keeps its
// records.
func TestUpgradeFromVersion1(t *testing.T) {
	s, path := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	must[Host](t)(s.CreateHost(ctx, Host{Name: "h1"}))
	must[Instance](t)(s.CreateInstance(ctx, Instance{Name: "i1", Group: "edge", Host: "h1"}))
	s.Close()
	s2 := reopenAtSchema(t, path, "1", bucketStates)
	if err := s2.PutInstanceState(ctx, InstanceState{Instance: "i1", LastHeartbeat: time.Now()}); err != nil {
		t.Fatalf("heartbeat after upgrade: %v", err)
	}
	if l := must[[]Instance](t)(s2.ListInstances(ctx, InstanceFilter{})); len(l) != 1 {
		t.Errorf("instances after upgrade %+v", l)
	}
}

func TestOpenRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
	}{
		{"held by another process", func(t *testing.T, path string) {
			held, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { held.Close() })
		}, bolterrors.ErrTimeout},
		{"cut short", func(t *testing.T, path string) {
			full := filled(t, path)
			// Fewer pages than the smallest file bbolt writes: the meta
			// pages point past the end.
			if err := os.WriteFile(path, full[:3*os.Getpagesize()], 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"damaged pages", func(t *testing.T, path string) {
			full := filled(t, path)
			for i := 2 * os.Getpagesize(); i < len(full); i++ {
				full[i] = 0xA5
			}
			if err := os.WriteFile(path, full, 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"not a bbolt file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("gatehouse"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admin.db")
			tc.prepare(t, path)
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// filled writes a store with some content at path and returns its bytes.
func filled(t *testing.T, path string) []byte {
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		must[Host](t)(s.CreateHost(ctx, Host{Name: fmt.Sprintf("host-%03d", i)}))
	}
	s.Close()
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return full
}
