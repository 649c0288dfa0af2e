package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// fill gives s one record of every kind a snapshot holds, with the
// values a store sets itself (versions, numbers, IDs, sequence) past
// their first ones, so that a restore that renumbers shows.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	m := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	m(s.InitDomain(ctx, store.Domain{Name: "prod", CACertPEM: "pem", SigningPublicKey: []byte{1, 2, 3}}))
	m(ignore(s.CreateGroup(ctx, store.Group{Name: "edge", Labels: map[string]string{"env": "prod"}, Environment: "prod"})))
	m(ignore(s.UpdateGroup(ctx, store.Group{Name: "edge", Labels: map[string]string{"env": "prod"}, Environment: "prod", Description: "d"}, 1)))
	m(ignore(s.SetGossipKeys(ctx, "edge", [][]byte{[]byte("sealed-gossip-key")})))
	m(ignore(s.CreateGroup(ctx, store.Group{Name: "api"})))
	m(ignore(s.CreateHost(ctx, store.Host{Name: "h1", Labels: map[string]string{"rack": "a"}})))
	m(s.SetHostAddress(ctx, "h1", "10.0.0.1"))
	m(s.SetHostCapabilities(ctx, "h1", store.HostCapabilities{GatewayVersion: "1.2.3", FeatureLevel: 4, Since: t0}))
	m(ignore(s.CreateInstance(ctx, store.Instance{Name: "i1", Group: "edge", Host: "h1", Listen: ":8080"})))
	m(ignore(s.RequestRestart(ctx, "i1")))
	m(ignore(s.CreateJoinToken(ctx, store.JoinToken{ID: "jt1", Host: "h1", SecretHash: "hash", ExpiresAt: t0.Add(time.Hour)})))
	m(s.AddNodeCert(ctx, store.NodeCert{Serial: "0abc", Host: "h1", IssuedAt: t0, NotAfter: t0.Add(time.Hour)}))
	d := must[store.Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))
	must[store.Deployment](t)(s.Freeze(ctx, "edge", d.Version, signer("ann")))
	must[store.Deployment](t)(s.Rollback(ctx, "edge", 1, func(src store.Deployment, _ uint64) (store.Deployment, error) {
		src.Template, src.Message = []byte{0, 1, 255}, "back"
		return src, nil
	}))
	must[store.Draft](t)(s.PutDraft(ctx, "edge", cfg("b"), d.Version, "bob"))
	m(s.PutInstanceState(ctx, store.InstanceState{Instance: "i1", LastHeartbeat: t0, AppliedDeployment: 2, Ready: true,
		Peers: []store.Peer{{Name: "i1", State: "alive", Deployment: 2, Since: t0}}}))
	m(ignore(s.CreateUser(ctx, store.User{Name: "ann", PasswordHash: "ph"})))
	m(ignore(s.CreateRole(ctx, store.Role{Name: "ops", Permissions: []string{"group:read"}, BuiltIn: true})))
	m(ignore(s.CreateRoleBinding(ctx, store.RoleBinding{User: "ann", Role: "ops", Scope: store.Scope{Groups: []string{"edge"}}})))
	m(ignore(s.CreateToken(ctx, store.Token{User: "ann", Name: "ci", SecretHash: "th"})))
	for i := range 3 {
		m(ignore(s.AppendAudit(ctx, store.AuditEntry{User: "ann", Action: fmt.Sprint("act", i), Group: "edge", Result: store.AuditOK})))
	}
	m(ignore(s.UpdateEnvironment(ctx, "prod", "ann", func(e *store.Environment) error {
		e.Values = map[string]string{"host": "a.example"}
		return nil
	})))
	m(ignore(s.PutSecret(ctx, store.Secret{Environment: "prod", Name: "token", Sealed: []byte("sealed-secret")})))
	m(ignore(s.PutTrustedDomain(ctx, store.TrustedDomain{Name: "dev", PublicKey: []byte{4, 5, 6}})))
}

// snapshot returns the JSON encoding of every item of s, kind by kind.
func snapshot(t *testing.T, s store.Store) []string {
	t.Helper()
	var out []string
	err := s.Snapshot(ctx, func(it store.Item) error {
		it, err := it.Decoded()
		if err != nil {
			return err
		}
		if it.Value == nil {
			return fmt.Errorf("snapshot item of kind %s holds nothing", it.Kind)
		}
		data, err := json.Marshal(it.Value)
		out = append(out, it.Kind+" "+string(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// replay restores the items of from into to, through their JSON
// encoding as a backup carries them.
func replay(from []string) func(put func(store.Item) error) error {
	return func(put func(store.Item) error) error {
		for _, line := range from {
			kind, data, _ := strings.Cut(line, " ")
			it, err := store.DecodeItem(kind, []byte(data))
			if err != nil {
				return err
			}
			if err := put(it); err != nil {
				return err
			}
		}
		return nil
	}
}

// A snapshot holds every kind, in order; restored into an empty store it
// reads back the same, and the restored store numbers on from there.
func testSnapshotRestore(t *testing.T, open Opener) {
	src := open(t)
	fill(t, src)
	items := snapshot(t, src)
	var kinds []string
	for _, line := range items {
		kind, _, _ := strings.Cut(line, " ")
		if len(kinds) == 0 || kinds[len(kinds)-1] != kind {
			kinds = append(kinds, kind)
		}
	}
	if !slices.Equal(kinds, store.SnapshotKinds) {
		t.Fatalf("snapshot kinds %v, want each of %v in that order", kinds, store.SnapshotKinds)
	}

	dst := open(t)
	if err := dst.Restore(ctx, replay(items)); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, dst); !slices.Equal(got, items) {
		t.Fatalf("restored store reads back differently:\n got %q\nwant %q", got, items)
	}
	if e := must[store.AuditEntry](t)(dst.AppendAudit(ctx, store.AuditEntry{User: "ann", Action: "after", Result: store.AuditOK})); e.Seq != 4 {
		t.Errorf("first audit entry after the restore has Seq %d, want 4", e.Seq)
	}
	d := must[store.Draft](t)(dst.GetDraft(ctx, "edge"))
	if dep := must[store.Deployment](t)(dst.Freeze(ctx, "edge", d.Version, signer("ann"))); dep.Number != 3 {
		t.Errorf("first deployment after the restore numbered %d, want 3", dep.Number)
	}
	b := must[store.RoleBinding](t)(dst.CreateRoleBinding(ctx, store.RoleBinding{User: "ann", Role: "ops", Scope: store.Scope{Domain: true}}))
	if b.ID == "" {
		t.Error("binding created after the restore has no ID")
	}
}

// A store that holds anything is refused and left as it was; an error
// while reading leaves an empty store empty.
func testRestoreRefusals(t *testing.T, open Opener) {
	src := open(t)
	fill(t, src)
	items := snapshot(t, src)

	busy := open(t)
	must[store.Group](t)(busy.CreateGroup(ctx, store.Group{Name: "only"}))
	before := snapshot(t, busy)
	if err := busy.Restore(ctx, replay(items)); !errors.Is(err, store.ErrExists) {
		t.Errorf("restore into a store with a group: %v, want ErrExists", err)
	}
	if got := snapshot(t, busy); !slices.Equal(got, before) {
		t.Errorf("refused restore changed the store: %q", got)
	}

	empty := open(t)
	broken := errors.New("backup ends early")
	err := empty.Restore(ctx, func(put func(store.Item) error) error {
		if err := replay(items[:len(items)/2])(put); err != nil {
			return err
		}
		return broken
	})
	if !errors.Is(err, broken) {
		t.Errorf("restore whose reader fails: %v, want its error", err)
	}
	if got := snapshot(t, empty); len(got) != 0 {
		t.Errorf("failed restore left %d records: %q", len(got), got)
	}
	if err := empty.Restore(ctx, replay(items)); err != nil {
		t.Errorf("restore after a failed one: %v", err)
	}
	if err := empty.Restore(ctx, func(put func(store.Item) error) error {
		return put(store.Item{Kind: store.KindGroup, Value: "not a group"})
	}); err == nil {
		t.Error("an item of the wrong type was accepted")
	}
}

// A snapshot taken while deploys and audit entries are written sees each
// as of one moment: audit numbers 1..n without a gap, each group's
// deployments 1..n, and the draft every deployment froze.
func testSnapshotUnderWrites(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		for v := uint64(0); !stop.Load(); v++ {
			if _, err := s.PutDraft(ctx, "edge", cfg(fmt.Sprint("u", v)), v, "ann"); err != nil {
				errs <- err
				return
			}
			if _, err := s.Freeze(ctx, "edge", v+1, signer("ann")); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for !stop.Load() {
			if _, err := s.AppendAudit(ctx, store.AuditEntry{User: "ann", Action: "w", Result: store.AuditOK}); err != nil {
				errs <- err
				return
			}
		}
	})
	defer func() {
		stop.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}()
	for round := 0; round < 5; round++ {
		var audit, deps []uint64
		var draft store.Draft
		var last store.Deployment
		err := s.Snapshot(ctx, func(it store.Item) error {
			it, err := it.Decoded()
			if err != nil {
				return err
			}
			switch v := it.Value.(type) {
			case store.AuditEntry:
				audit = append(audit, v.Seq)
			case store.Deployment:
				deps = append(deps, v.Number)
				last = v
			case store.Draft:
				draft = v
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range audit {
			if n != uint64(i+1) {
				t.Fatalf("round %d: audit numbers %v have a gap", round, audit)
			}
		}
		for i, n := range deps {
			if n != uint64(i+1) {
				t.Fatalf("round %d: deployment numbers %v have a gap", round, deps)
			}
		}
		// Each round of the writer puts draft v+1 and freezes it as
		// deployment v+1: a consistent view has the draft at most one
		// ahead of the last deployment.
		if n := uint64(len(deps)); draft.Version != n && draft.Version != n+1 {
			t.Fatalf("round %d: draft version %d beside %d deployments", round, draft.Version, n)
		}
		if len(deps) > 0 {
			c := cfg(fmt.Sprint("u", len(deps)-1))
			want, err := c.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			if string(last.Config) != string(want) {
				t.Fatalf("round %d: deployment %d holds %s, want the draft it froze", round, last.Number, last.Config)
			}
		}
	}
}

// The next deployment is numbered above what the group's instances report
// running: after a restore from an older backup, the gateways may run
// numbers the store no longer holds.
func testNumberingAboveObserved(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "api"}))
	must[store.Host](t)(s.CreateHost(ctx, store.Host{Name: "h1"}))
	for _, in := range []store.Instance{{Name: "e1", Group: "edge", Host: "h1"}, {Name: "e2", Group: "edge", Host: "h1"}, {Name: "a1", Group: "api", Host: "h1"}} {
		must[store.Instance](t)(s.CreateInstance(ctx, in))
	}
	if err := s.PutInstanceStates(ctx, []store.InstanceState{
		{Instance: "e1", LastHeartbeat: t0, AppliedDeployment: 7},
		{Instance: "e2", LastHeartbeat: t0, AppliedDeployment: 5, Peers: []store.Peer{{Name: "x", Deployment: 9}}},
		{Instance: "a1", LastHeartbeat: t0, AppliedDeployment: 40},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		group string
		want  uint64
	}{
		{"edge", 10}, // above the peer's 9, not the other group's 40
		{"edge", 11},
		{"api", 41},
	} {
		d := must[store.Draft](t)(s.GetDraft(ctx, tc.group))
		if d.Version == 0 {
			d = must[store.Draft](t)(s.PutDraft(ctx, tc.group, cfg("a"), 0, "ann"))
		}
		dep := must[store.Deployment](t)(s.Freeze(ctx, tc.group, d.Version, signer("ann")))
		if dep.Number != tc.want {
			t.Errorf("deployment of %s numbered %d, want %d", tc.group, dep.Number, tc.want)
		}
	}
	back := must[store.Deployment](t)(s.Rollback(ctx, "edge", 10, signer2))
	if back.Number != 12 {
		t.Errorf("rollback numbered %d, want 12", back.Number)
	}
}

func signer2(src store.Deployment, _ uint64) (store.Deployment, error) { return src, nil }
