package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
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

// step is one operation of a table-driven scenario and the error it must
// give (nil or a sentinel).
type step struct {
	name string
	do   func(s Store) error
	want error
}

func run(t *testing.T, s Store, steps []step) {
	t.Helper()
	for _, st := range steps {
		err := st.do(s)
		if !errors.Is(err, st.want) {
			t.Errorf("%s: error %v, want %v", st.name, err, st.want)
		}
	}
}

func ignore[T any](_ T, err error) error { return err }

func cfg(upstream string) deploy.Config {
	return deploy.Config{Upstreams: []deploy.Upstream{{Name: upstream, Targets: []deploy.Target{{Address: "127.0.0.1:9001"}}}}}
}

func TestDomain(t *testing.T) {
	s, _ := open(t)
	run(t, s, []step{
		{"get before init", func(s Store) error { return ignore(s.GetDomain(ctx)) }, ErrNotFound},
		{"init without name", func(s Store) error { return s.InitDomain(ctx, Domain{}) }, ErrInvalid},
		{"init", func(s Store) error { return s.InitDomain(ctx, Domain{Name: "prod", CACertPEM: "pem"}) }, nil},
		{"init twice", func(s Store) error { return s.InitDomain(ctx, Domain{Name: "other"}) }, ErrExists},
	})
	d := must[Domain](t)(s.GetDomain(ctx))
	if d.Name != "prod" || d.CACertPEM != "pem" || d.CreatedAt.IsZero() || d.CreatedAt.Location() != time.UTC {
		t.Errorf("domain %+v", d)
	}
}

func TestGroupsHostsInstances(t *testing.T) {
	s, _ := open(t)
	inst := func(name, group, host string) Instance {
		return Instance{Name: name, Group: group, Host: host, Listen: ":8080"}
	}
	run(t, s, []step{
		{"create group", func(s Store) error {
			return ignore(s.CreateGroup(ctx, Group{Name: "edge", Labels: map[string]string{"env": "prod"}}))
		}, nil},
		{"create group again", func(s Store) error { return ignore(s.CreateGroup(ctx, Group{Name: "edge"})) }, ErrExists},
		{"create group without name", func(s Store) error { return ignore(s.CreateGroup(ctx, Group{})) }, ErrInvalid},
		{"create second group", func(s Store) error { return ignore(s.CreateGroup(ctx, Group{Name: "api"})) }, nil},
		{"get missing group", func(s Store) error { return ignore(s.GetGroup(ctx, "nope")) }, ErrNotFound},
		{"update stale", func(s Store) error { return ignore(s.UpdateGroup(ctx, Group{Name: "edge"}, 7)) }, ErrConflict},
		{"update", func(s Store) error { return ignore(s.UpdateGroup(ctx, Group{Name: "edge", Description: "d"}, 1)) }, nil},
		{"update same version again", func(s Store) error { return ignore(s.UpdateGroup(ctx, Group{Name: "edge"}, 1)) }, ErrConflict},
		{"update missing", func(s Store) error { return ignore(s.UpdateGroup(ctx, Group{Name: "nope"}, 1)) }, ErrNotFound},
		{"create host", func(s Store) error { return ignore(s.CreateHost(ctx, Host{Name: "h1"})) }, nil},
		{"create host again", func(s Store) error { return ignore(s.CreateHost(ctx, Host{Name: "h1"})) }, ErrExists},
		{"create host 2", func(s Store) error { return ignore(s.CreateHost(ctx, Host{Name: "h2"})) }, nil},
		{"instance missing group", func(s Store) error { return ignore(s.CreateInstance(ctx, inst("i1", "nope", "h1"))) }, ErrNotFound},
		{"instance missing host", func(s Store) error { return ignore(s.CreateInstance(ctx, inst("i1", "edge", "nope"))) }, ErrNotFound},
		{"create instance", func(s Store) error { return ignore(s.CreateInstance(ctx, inst("i1", "edge", "h1"))) }, nil},
		{"create instance 2", func(s Store) error { return ignore(s.CreateInstance(ctx, inst("i2", "api", "h1"))) }, nil},
		{"instance name unique in domain", func(s Store) error { return ignore(s.CreateInstance(ctx, inst("i1", "api", "h2"))) }, ErrExists},
		{"update instance missing", func(s Store) error { return ignore(s.UpdateInstance(ctx, inst("nope", "api", "h2"))) }, ErrNotFound},
		{"update instance bad host", func(s Store) error { return ignore(s.UpdateInstance(ctx, inst("i2", "api", "nope"))) }, ErrNotFound},
		{"move instance", func(s Store) error { return ignore(s.UpdateInstance(ctx, inst("i2", "api", "h2"))) }, nil},
		{"delete group with instances", func(s Store) error { return s.DeleteGroup(ctx, "edge") }, ErrInUse},
		{"delete host with instances", func(s Store) error { return s.DeleteHost(ctx, "h1") }, ErrInUse},
		{"delete missing group", func(s Store) error { return s.DeleteGroup(ctx, "nope") }, ErrNotFound},
		{"delete missing host", func(s Store) error { return s.DeleteHost(ctx, "nope") }, ErrNotFound},
		{"delete missing instance", func(s Store) error { return s.DeleteInstance(ctx, "nope") }, ErrNotFound},
	})

	if err := func() error { _, err := s.CreateInstance(ctx, inst("x", "nope", "h1")); return err }(); err == nil || !strings.Contains(err.Error(), `group "nope"`) {
		t.Errorf("missing group error %v does not name the group", err)
	}
	g := must[Group](t)(s.GetGroup(ctx, "edge"))
	if g.Version != 2 || g.Description != "d" || g.Labels != nil || g.Type != GroupTypeGateway || g.UpdatedAt.Before(g.CreatedAt) {
		t.Errorf("updated group %+v", g)
	}
	if names := groupNames(must[[]Group](t)(s.ListGroups(ctx))); !slices.Equal(names, []string{"api", "edge"}) {
		t.Errorf("groups %v, want sorted by name", names)
	}
	i2 := must[Instance](t)(s.GetInstance(ctx, "i2"))
	if i2.Host != "h2" || i2.CreatedAt.IsZero() || i2.UpdatedAt.Before(i2.CreatedAt) {
		t.Errorf("moved instance %+v", i2)
	}

	for _, tc := range []struct {
		f    InstanceFilter
		want []string
	}{
		{InstanceFilter{}, []string{"i1", "i2"}},
		{InstanceFilter{Group: "edge"}, []string{"i1"}},
		{InstanceFilter{Host: "h2"}, []string{"i2"}},
		{InstanceFilter{Group: "edge", Host: "h2"}, []string{}},
	} {
		list := must[[]Instance](t)(s.ListInstances(ctx, tc.f))
		got := []string{}
		for _, in := range list {
			got = append(got, in.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ListInstances(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}

	// Deleting a group takes its draft and history with it.
	must[Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))
	must[Deployment](t)(s.Freeze(ctx, "edge", 1, signer("ann")))
	run(t, s, []step{
		{"delete instance", func(s Store) error { return s.DeleteInstance(ctx, "i1") }, nil},
		{"delete emptied group", func(s Store) error { return s.DeleteGroup(ctx, "edge") }, nil},
		{"delete host still used by i2", func(s Store) error { return s.DeleteHost(ctx, "h2") }, ErrInUse},
		{"delete emptied host", func(s Store) error { return s.DeleteHost(ctx, "h1") }, nil},
		{"recreate group", func(s Store) error { return ignore(s.CreateGroup(ctx, Group{Name: "edge"})) }, nil},
	})
	if d := must[Draft](t)(s.GetDraft(ctx, "edge")); d.Version != 0 {
		t.Errorf("recreated group has the old draft %+v", d)
	}
	if _, err := s.LatestDeployment(ctx, "edge"); !errors.Is(err, ErrNotFound) {
		t.Errorf("recreated group has old deployments: %v", err)
	}
}

func groupNames(gs []Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func TestDraftOptimisticConcurrency(t *testing.T) {
	s, _ := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	run(t, s, []step{
		{"draft of missing group", func(s Store) error { return ignore(s.GetDraft(ctx, "nope")) }, ErrNotFound},
		{"put draft of missing group", func(s Store) error { return ignore(s.PutDraft(ctx, "nope", cfg("a"), 0, "ann")) }, ErrNotFound},
	})
	if d := must[Draft](t)(s.GetDraft(ctx, "edge")); d.Version != 0 || d.Group != "edge" {
		t.Fatalf("empty draft %+v", d)
	}

	for round := uint64(0); round < 10; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2)
		for w := range errs {
			wg.Go(func() {
				<-start
				_, errs[w] = s.PutDraft(ctx, "edge", cfg(fmt.Sprint("writer", w)), round, fmt.Sprint("writer", w))
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1 (%v)", round, won, errs)
		}
		d := must[Draft](t)(s.GetDraft(ctx, "edge"))
		if d.Version != round+1 || d.Config.Upstreams[0].Name != d.UpdatedBy {
			t.Fatalf("round %d: draft %+v", round, d)
		}
	}
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

func TestFreeze(t *testing.T) {
	s, _ := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	d := must[Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))

	const n = 20
	var wg sync.WaitGroup
	numbers := make([]uint64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			dep, err := s.Freeze(ctx, "edge", d.Version, signer(fmt.Sprint("w", i)))
			numbers[i], errs[i] = dep.Number, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("freeze %d: %v", i, err)
		}
	}
	slices.Sort(numbers)
	for i, got := range numbers {
		if got != uint64(i+1) {
			t.Fatalf("numbers %v, want 1..%d without gaps or duplicates", numbers, n)
		}
	}

	buildErr := errors.New("invalid configuration")
	run(t, s, []step{
		{"stale draft version", func(s Store) error { return ignore(s.Freeze(ctx, "edge", d.Version-1, signer("x"))) }, ErrConflict},
		{"missing group", func(s Store) error { return ignore(s.Freeze(ctx, "nope", 0, signer("x"))) }, ErrNotFound},
		{"build fails", func(s Store) error {
			return ignore(s.Freeze(ctx, "edge", d.Version, func(Draft, uint64) (Deployment, error) { return Deployment{}, buildErr }))
		}, buildErr},
		{"draft changes underneath", func(s Store) error { return ignore(s.PutDraft(ctx, "edge", cfg("b"), d.Version, "bob")) }, nil},
		{"freeze the old version", func(s Store) error { return ignore(s.Freeze(ctx, "edge", d.Version, signer("x"))) }, ErrConflict},
	})
	latest := must[Deployment](t)(s.LatestDeployment(ctx, "edge"))
	if latest.Number != n {
		t.Fatalf("failed freezes stored deployment %d", latest.Number)
	}
	next := must[Deployment](t)(s.Freeze(ctx, "edge", d.Version+1, signer("bob")))
	b := cfg("b")
	want := must[[]byte](t)(b.Canonical())
	if next.Number != n+1 || next.Group != "edge" || string(next.Config) != string(want) || next.CreatedAt.IsZero() {
		t.Errorf("freeze of the new draft: %+v", next)
	}
}

// deployDraft freezes the group's draft (version 1) with a message.
func deployDraft(s Store, group, message string) error {
	_, err := s.Freeze(ctx, group, 1, func(d Draft, number uint64) (Deployment, error) {
		dep, err := signer("ann")(d, number)
		dep.Message = message
		return dep, err
	})
	return err
}

func TestDeployments(t *testing.T) {
	s, _ := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "api"}))
	must[Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))
	must[Draft](t)(s.PutDraft(ctx, "api", cfg("a"), 0, "ann"))
	var seen uint64
	rollback := func(to uint64) func(s Store) error {
		return func(s Store) error {
			_, err := s.Rollback(ctx, "edge", to, func(src Deployment, number uint64) (Deployment, error) {
				seen = src.Number
				src.Message = fmt.Sprintf("roll back to %d as %d", to, number)
				return src, nil
			})
			return err
		}
	}
	run(t, s, []step{
		{"latest of none", func(s Store) error { return ignore(s.LatestDeployment(ctx, "edge")) }, ErrNotFound},
		{"get of none", func(s Store) error { return ignore(s.GetDeployment(ctx, "edge", 1)) }, ErrNotFound},
		{"rollback with none", rollback(1), ErrNotFound},
		{"missing group", func(s Store) error { return deployDraft(s, "nope", "") }, ErrNotFound},
		{"list missing group", func(s Store) error { return ignore(s.ListDeployments(ctx, "nope")) }, ErrNotFound},
		{"first", func(s Store) error { return deployDraft(s, "edge", "one") }, nil},
		{"second", func(s Store) error { return deployDraft(s, "edge", "two") }, nil},
		{"other group counts apart", func(s Store) error { return deployDraft(s, "api", "") }, nil},
		{"rollback to missing", rollback(9), ErrNotFound},
		{"rollback", rollback(1), nil},
		{"get missing number", func(s Store) error { return ignore(s.GetDeployment(ctx, "edge", 4)) }, ErrNotFound},
	})
	if seen != 1 {
		t.Errorf("rollback built from deployment %d, want 1", seen)
	}
	list := must[[]Deployment](t)(s.ListDeployments(ctx, "edge"))
	var got []uint64
	for _, d := range list {
		got = append(got, d.Number)
	}
	if !slices.Equal(got, []uint64{3, 2, 1}) {
		t.Errorf("deployments %v, want newest first", got)
	}
	if d := must[Deployment](t)(s.GetDeployment(ctx, "edge", 2)); d.Message != "two" {
		t.Errorf("deployment 2: %+v", d)
	}
	if d := must[Deployment](t)(s.LatestDeployment(ctx, "edge")); d.Number != 3 || d.RollbackOf != 1 || d.Message != "roll back to 1 as 3" {
		t.Errorf("latest %+v", d)
	}
	if d := must[Deployment](t)(s.LatestDeployment(ctx, "api")); d.Number != 1 {
		t.Errorf("api numbering shares edge's: %+v", d)
	}
	// An empty list, not nil, so that the API encodes [] rather than null.
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "new"}))
	if l := must[[]Deployment](t)(s.ListDeployments(ctx, "new")); l == nil || len(l) != 0 {
		t.Errorf("deployments of a new group: %#v", l)
	}
}

func TestUsersRolesBindingsTokens(t *testing.T) {
	s, _ := open(t)
	var annToken, bobToken Token
	var annBinding RoleBinding
	run(t, s, []step{
		{"create ann", func(s Store) error { return ignore(s.CreateUser(ctx, User{Name: "ann", PasswordHash: "h1"})) }, nil},
		{"create ann again", func(s Store) error { return ignore(s.CreateUser(ctx, User{Name: "ann"})) }, ErrExists},
		{"create bob", func(s Store) error { return ignore(s.CreateUser(ctx, User{Name: "bob"})) }, nil},
		{"update missing user", func(s Store) error { return ignore(s.UpdateUser(ctx, User{Name: "nope"})) }, ErrNotFound},
		{"disable bob", func(s Store) error {
			return ignore(s.UpdateUser(ctx, User{Name: "bob", Disabled: true, PasswordHash: "h2"}))
		}, nil},
		{"create role", func(s Store) error {
			return ignore(s.CreateRole(ctx, Role{Name: "deployer", Permissions: []string{"deploy"}}))
		}, nil},
		{"create role again", func(s Store) error { return ignore(s.CreateRole(ctx, Role{Name: "deployer"})) }, ErrExists},
		{"update role", func(s Store) error {
			return ignore(s.UpdateRole(ctx, Role{Name: "deployer", Permissions: []string{"deploy", "read"}}))
		}, nil},
		{"update missing role", func(s Store) error { return ignore(s.UpdateRole(ctx, Role{Name: "nope"})) }, ErrNotFound},
		{"binding without scope", func(s Store) error {
			return ignore(s.CreateRoleBinding(ctx, RoleBinding{User: "ann", Role: "deployer"}))
		}, ErrInvalid},
		{"binding with two scopes", func(s Store) error {
			return ignore(s.CreateRoleBinding(ctx, RoleBinding{User: "ann", Role: "deployer", Scope: Scope{Domain: true, Groups: []string{"edge"}}}))
		}, ErrInvalid},
		{"binding of missing user", func(s Store) error {
			return ignore(s.CreateRoleBinding(ctx, RoleBinding{User: "nope", Role: "deployer", Scope: Scope{Domain: true}}))
		}, ErrNotFound},
		{"binding of missing role", func(s Store) error {
			return ignore(s.CreateRoleBinding(ctx, RoleBinding{User: "ann", Role: "nope", Scope: Scope{Domain: true}}))
		}, ErrNotFound},
		{"bind ann", func(s Store) (err error) {
			annBinding, err = s.CreateRoleBinding(ctx, RoleBinding{User: "ann", Role: "deployer", Scope: Scope{Groups: []string{"edge"}}})
			return err
		}, nil},
		{"bind bob", func(s Store) error {
			return ignore(s.CreateRoleBinding(ctx, RoleBinding{User: "bob", Role: "deployer", Scope: Scope{Selector: map[string]string{"env": "dev"}}}))
		}, nil},
		{"delete bound role", func(s Store) error { return s.DeleteRole(ctx, "deployer") }, ErrInUse},
		{"token of missing user", func(s Store) error { return ignore(s.CreateToken(ctx, Token{User: "nope"})) }, ErrNotFound},
		{"ann token", func(s Store) (err error) {
			annToken, err = s.CreateToken(ctx, Token{User: "ann", Name: "ci", SecretHash: "x", ExpiresAt: t0.Add(time.Hour)})
			return err
		}, nil},
		{"ann second token", func(s Store) error { return ignore(s.CreateToken(ctx, Token{User: "ann", SecretHash: "y"})) }, nil},
		{"bob token", func(s Store) (err error) {
			bobToken, err = s.CreateToken(ctx, Token{ID: "bob-1", User: "bob"})
			return err
		}, nil},
		{"token id taken", func(s Store) error { return ignore(s.CreateToken(ctx, Token{ID: "bob-1", User: "ann"})) }, ErrExists},
		{"touch", func(s Store) error { return s.TouchToken(ctx, annToken.ID, t0) }, nil},
		{"touch missing", func(s Store) error { return s.TouchToken(ctx, "nope", t0) }, ErrNotFound},
		{"revoke missing", func(s Store) error { return s.RevokeToken(ctx, "nope") }, ErrNotFound},
		{"delete ann", func(s Store) error { return s.DeleteUser(ctx, "ann") }, nil},
		{"delete ann again", func(s Store) error { return s.DeleteUser(ctx, "ann") }, ErrNotFound},
		{"ann's binding gone", func(s Store) error { return ignore(s.GetRoleBinding(ctx, annBinding.ID)) }, ErrNotFound},
		{"delete missing binding", func(s Store) error { return s.DeleteRoleBinding(ctx, annBinding.ID) }, ErrNotFound},
	})
	if annBinding.ID == "" || len(annToken.ID) != 32 || bobToken.ID != "bob-1" {
		t.Errorf("IDs: binding %q, tokens %q %q", annBinding.ID, annToken.ID, bobToken.ID)
	}
	bob := must[User](t)(s.GetUser(ctx, "bob"))
	if !bob.Disabled || bob.PasswordHash != "h2" || bob.CreatedAt.IsZero() {
		t.Errorf("bob %+v", bob)
	}
	tokens := must[[]Token](t)(s.ListTokens(ctx, "ann"))
	if len(tokens) != 2 {
		t.Fatalf("ann's tokens %+v: want both kept, revoked", tokens)
	}
	for _, tok := range tokens {
		if !tok.Revoked {
			t.Errorf("ann's token %s survives her deletion", tok.ID)
		}
		if tok.ID == annToken.ID && (!tok.LastUsedAt.Equal(t0) || !tok.ExpiresAt.Equal(t0.Add(time.Hour))) {
			t.Errorf("touched token %+v", tok)
		}
	}
	if tok := must[Token](t)(s.GetToken(ctx, "bob-1")); tok.Revoked {
		t.Error("bob's token revoked with ann")
	}
	if bs := must[[]RoleBinding](t)(s.ListRoleBindings(ctx, "")); len(bs) != 1 || bs[0].User != "bob" || bs[0].Scope.Selector["env"] != "dev" {
		t.Errorf("bindings after deleting ann: %+v", bs)
	}
	run(t, s, []step{
		{"revoke bob's", func(s Store) error { return s.RevokeToken(ctx, "bob-1") }, nil},
		{"delete bob's binding", func(s Store) error {
			bs, _ := s.ListRoleBindings(ctx, "bob")
			return s.DeleteRoleBinding(ctx, bs[0].ID)
		}, nil},
		{"delete unbound role", func(s Store) error { return s.DeleteRole(ctx, "deployer") }, nil},
		{"role gone", func(s Store) error { return ignore(s.GetRole(ctx, "deployer")) }, ErrNotFound},
	})
	if tok := must[Token](t)(s.GetToken(ctx, "bob-1")); !tok.Revoked {
		t.Error("revoke did not stick")
	}
	if us := must[[]User](t)(s.ListUsers(ctx)); len(us) != 1 || us[0].Name != "bob" {
		t.Errorf("users %+v", us)
	}
}

func TestAudit(t *testing.T) {
	s, _ := open(t)
	entries := []AuditEntry{
		{User: "ann", Action: "group.create", Group: "edge", Result: AuditOK},
		{User: "bob", Action: "draft.put", Group: "edge", Result: AuditOK},
		{User: "ann", Action: "deploy", Group: "edge", Result: AuditOK},
		{User: "bob", Action: "deploy", Group: "api", Result: AuditDenied},
		{User: "ann", Action: "deploy", Group: "api", Result: AuditOK},
		{User: "ann", Action: "user.delete", Result: AuditError},
	}
	for i, e := range entries {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		got := must[AuditEntry](t)(s.AppendAudit(ctx, e))
		if got.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, got.Seq)
		}
	}
	if e := must[AuditEntry](t)(s.AppendAudit(ctx, AuditEntry{User: "x", Action: "now"})); e.Time.IsZero() || e.Seq != 7 {
		t.Errorf("entry without time: %+v", e)
	}

	for _, tc := range []struct {
		name string
		f    AuditFilter
		want []uint64
	}{
		{"all newest first", AuditFilter{}, []uint64{7, 6, 5, 4, 3, 2, 1}},
		{"user", AuditFilter{User: "bob"}, []uint64{4, 2}},
		{"action", AuditFilter{Action: "deploy"}, []uint64{5, 4, 3}},
		{"group", AuditFilter{Group: "api"}, []uint64{5, 4}},
		{"user and action", AuditFilter{User: "ann", Action: "deploy"}, []uint64{5, 3}},
		{"since inclusive, until exclusive", AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(4 * time.Minute)}, []uint64{4, 3, 2}},
		{"limit", AuditFilter{Limit: 2}, []uint64{7, 6}},
		{"filtered limit", AuditFilter{User: "ann", Limit: 2}, []uint64{6, 5}},
		{"cursor", AuditFilter{Before: 5}, []uint64{4, 3, 2, 1}},
		{"cursor and limit", AuditFilter{Before: 5, Limit: 2}, []uint64{4, 3}},
		{"cursor beyond the end", AuditFilter{Before: 100, Limit: 1}, []uint64{7}},
		{"cursor at the start", AuditFilter{Before: 1}, []uint64{}},
		{"no match", AuditFilter{User: "nobody"}, []uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := must[[]AuditEntry](t)(s.ListAudit(ctx, tc.f))
			got := []uint64{}
			for _, e := range list {
				got = append(got, e.Seq)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ListAudit(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		})
	}
	// The interface is the guarantee of append-only: nothing changes or
	// deletes an entry.
	st := reflect.TypeFor[Store]()
	for i := range st.NumMethod() {
		if m := st.Method(i).Name; strings.Contains(m, "Audit") && m != "AppendAudit" && m != "ListAudit" {
			t.Errorf("Store has %s: the audit log must be append-only", m)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := open(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.CreateGroup(c, Group{Name: "edge"}); !errors.Is(err, context.Canceled) {
		t.Errorf("create with cancelled context: %v", err)
	}
	if _, err := s.GetGroup(ctx, "edge"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancelled create stored the group: %v", err)
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

func TestInstanceStates(t *testing.T) {
	s, _ := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	must[Host](t)(s.CreateHost(ctx, Host{Name: "h1"}))
	must[Instance](t)(s.CreateInstance(ctx, Instance{Name: "i1", Group: "edge", Host: "h1"}))
	must[Instance](t)(s.CreateInstance(ctx, Instance{Name: "i2", Group: "edge", Host: "h1"}))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("X", 3600))
	run(t, s, []step{
		{"state of a missing instance", func(s Store) error { return s.PutInstanceState(ctx, InstanceState{Instance: "nope"}) }, ErrNotFound},
		{"first heartbeat", func(s Store) error {
			return s.PutInstanceState(ctx, InstanceState{Instance: "i2", LastHeartbeat: at, AppliedDeployment: 3, Ready: true})
		}, nil},
		{"i1 heartbeat", func(s Store) error { return s.PutInstanceState(ctx, InstanceState{Instance: "i1", LastHeartbeat: at}) }, nil},
		{"next heartbeat replaces", func(s Store) error {
			return s.PutInstanceState(ctx, InstanceState{Instance: "i2", LastHeartbeat: at.Add(time.Second), AppliedDeployment: 4})
		}, nil},
		{"delete i1 forgets its state", func(s Store) error { return s.DeleteInstance(ctx, "i1") }, nil},
	})
	got := must[[]InstanceState](t)(s.ListInstanceStates(ctx))
	want := []InstanceState{{Instance: "i2", LastHeartbeat: at.Add(time.Second).UTC(), AppliedDeployment: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("states %+v, want %+v", got, want)
	}
}

func TestJoinTokensAndNodeCerts(t *testing.T) {
	s, _ := open(t)
	must[Host](t)(s.CreateHost(ctx, Host{Name: "h1"}))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tok := must[JoinToken](t)(s.CreateJoinToken(ctx, JoinToken{Host: "h1", SecretHash: "x", ExpiresAt: at.Add(time.Hour)}))
	refuse := errors.New("refused by check")
	run(t, s, []step{
		{"token for a missing host", func(s Store) error { return ignore(s.CreateJoinToken(ctx, JoinToken{Host: "nope"})) }, ErrNotFound},
		{"unknown token", func(s Store) error {
			return ignore(s.UseJoinToken(ctx, "nope", at, func(JoinToken) error { return nil }))
		}, ErrNotFound},
		{"check refuses", func(s Store) error {
			return ignore(s.UseJoinToken(ctx, tok.ID, at, func(JoinToken) error { return refuse }))
		}, refuse},
		{"use", func(s Store) error {
			return ignore(s.UseJoinToken(ctx, tok.ID, at, func(JoinToken) error { return nil }))
		}, nil},
		{"use again", func(s Store) error {
			return ignore(s.UseJoinToken(ctx, tok.ID, at, func(JoinToken) error { return nil }))
		}, ErrConflict},
		{"cert", func(s Store) error { return s.AddNodeCert(ctx, NodeCert{Serial: "0a", Host: "h1", NotAfter: at}) }, nil},
		{"same serial", func(s Store) error { return s.AddNodeCert(ctx, NodeCert{Serial: "0a", Host: "h1"}) }, ErrExists},
		{"cert for a missing host", func(s Store) error { return s.AddNodeCert(ctx, NodeCert{Serial: "0b", Host: "nope"}) }, ErrNotFound},
		{"delete the host", func(s Store) error { return s.DeleteHost(ctx, "h1") }, nil},
	})
	if l := must[[]JoinToken](t)(s.ListJoinTokens(ctx)); len(l) != 1 || !l[0].UsedAt.Equal(at) {
		t.Errorf("join tokens %+v", l)
	}
	if c := must[NodeCert](t)(s.GetNodeCert(ctx, "0a")); !c.Revoked {
		t.Errorf("certificate of a deleted host not revoked: %+v", c)
	}
}

func TestPutInstanceStatesSkipsMissing(t *testing.T) {
	s, _ := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	must[Host](t)(s.CreateHost(ctx, Host{Name: "h1"}))
	must[Instance](t)(s.CreateInstance(ctx, Instance{Name: "i1", Group: "edge", Host: "h1"}))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	err := s.PutInstanceStates(ctx, []InstanceState{{Instance: "i1", LastHeartbeat: at, Ready: true}, {Instance: "gone", LastHeartbeat: at}})
	if err != nil {
		t.Fatal(err)
	}
	got := must[[]InstanceState](t)(s.ListInstanceStates(ctx))
	if len(got) != 1 || got[0].Instance != "i1" || !got[0].Ready {
		t.Errorf("states %+v", got)
	}
}

func TestGossipKeysAndHostAddress(t *testing.T) {
	s, _ := open(t)
	g := must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	must[Host](t)(s.CreateHost(ctx, Host{Name: "h1"}))
	keys := [][]byte{[]byte("k2"), []byte("k1")}
	got := must[Group](t)(s.SetGossipKeys(ctx, "edge", keys))
	if got.Version != g.Version || len(got.GossipKeys) != 2 {
		t.Errorf("after SetGossipKeys: %+v", got)
	}
	// An update of the group's labels keeps the keys.
	must[Group](t)(s.UpdateGroup(ctx, Group{Name: "edge", Labels: map[string]string{"a": "b"}}, g.Version))
	if got := must[Group](t)(s.GetGroup(ctx, "edge")); !reflect.DeepEqual(got.GossipKeys, keys) {
		t.Errorf("keys after an update: %q", got.GossipKeys)
	}
	run(t, s, []step{
		{"address", func(s Store) error { return s.SetHostAddress(ctx, "h1", "10.0.0.5") }, nil},
		{"address of a missing host", func(s Store) error { return s.SetHostAddress(ctx, "nope", "x") }, ErrNotFound},
		{"keys of a missing group", func(s Store) error { return ignore(s.SetGossipKeys(ctx, "nope", nil)) }, ErrNotFound},
	})
	if h := must[Host](t)(s.GetHost(ctx, "h1")); h.Address != "10.0.0.5" {
		t.Errorf("host %+v", h)
	}
}

// A restart request survives an update of the instance's desired state,
// and a host's capabilities are kept beside its address.
func TestRestartGenerationAndCapabilities(t *testing.T) {
	s, _ := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	must[Host](t)(s.CreateHost(ctx, Host{Name: "h1"}))
	must[Instance](t)(s.CreateInstance(ctx, Instance{Name: "i1", Group: "edge", Host: "h1"}))
	for want := uint64(1); want <= 2; want++ {
		if got := must[Instance](t)(s.RequestRestart(ctx, "i1")); got.RestartGeneration != want {
			t.Fatalf("restart %d: generation %d", want, got.RestartGeneration)
		}
	}
	must[Instance](t)(s.UpdateInstance(ctx, Instance{Name: "i1", Group: "edge", Host: "h1", Listen: ":9"}))
	if got := must[Instance](t)(s.GetInstance(ctx, "i1")); got.RestartGeneration != 2 || got.Listen != ":9" {
		t.Errorf("after an update: %+v", got)
	}
	if _, err := s.RequestRestart(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("restart of a missing instance: %v", err)
	}
	caps := HostCapabilities{GatewayVersion: "1.2.3", FeatureLevel: 1, Plugins: []string{"sig"}, Since: time.Now()}
	if err := s.SetHostCapabilities(ctx, "h1", caps); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHostAddress(ctx, "h1", "10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	h := must[Host](t)(s.GetHost(ctx, "h1"))
	if h.Capabilities == nil || h.Capabilities.GatewayVersion != "1.2.3" || !reflect.DeepEqual(h.Capabilities.Plugins, []string{"sig"}) || h.Address != "10.0.0.5" {
		t.Errorf("host %+v", h)
	}
	if err := s.SetHostCapabilities(ctx, "nope", caps); !errors.Is(err, ErrNotFound) {
		t.Errorf("capabilities of a missing host: %v", err)
	}
}
