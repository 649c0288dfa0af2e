package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

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
	do   func(s store.Store) error
	want error
}

func run(t *testing.T, s store.Store, steps []step) {
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

func testDomain(t *testing.T, open Opener) {
	s := open(t)
	run(t, s, []step{
		{"get before init", func(s store.Store) error { return ignore(s.GetDomain(ctx)) }, store.ErrNotFound},
		{"init without name", func(s store.Store) error { return s.InitDomain(ctx, store.Domain{}) }, store.ErrInvalid},
		{"init", func(s store.Store) error { return s.InitDomain(ctx, store.Domain{Name: "prod", CACertPEM: "pem"}) }, nil},
		{"init twice", func(s store.Store) error { return s.InitDomain(ctx, store.Domain{Name: "other"}) }, store.ErrExists},
	})
	d := must[store.Domain](t)(s.GetDomain(ctx))
	if d.Name != "prod" || d.CACertPEM != "pem" || d.CreatedAt.IsZero() || d.CreatedAt.Location() != time.UTC {
		t.Errorf("domain %+v", d)
	}
}

func testGroupsHostsInstances(t *testing.T, open Opener) {
	s := open(t)
	inst := func(name, group, host string) store.Instance {
		return store.Instance{Name: name, Group: group, Host: host, Listen: ":8080"}
	}
	run(t, s, []step{
		{"create group", func(s store.Store) error {
			return ignore(s.CreateGroup(ctx, store.Group{Name: "edge", Labels: map[string]string{"env": "prod"}}))
		}, nil},
		{"create group again", func(s store.Store) error { return ignore(s.CreateGroup(ctx, store.Group{Name: "edge"})) }, store.ErrExists},
		{"create group without name", func(s store.Store) error { return ignore(s.CreateGroup(ctx, store.Group{})) }, store.ErrInvalid},
		{"create second group", func(s store.Store) error { return ignore(s.CreateGroup(ctx, store.Group{Name: "api"})) }, nil},
		{"get missing group", func(s store.Store) error { return ignore(s.GetGroup(ctx, "nope")) }, store.ErrNotFound},
		{"update stale", func(s store.Store) error { return ignore(s.UpdateGroup(ctx, store.Group{Name: "edge"}, 7)) }, store.ErrConflict},
		{"update", func(s store.Store) error {
			return ignore(s.UpdateGroup(ctx, store.Group{Name: "edge", Description: "d"}, 1))
		}, nil},
		{"update same version again", func(s store.Store) error { return ignore(s.UpdateGroup(ctx, store.Group{Name: "edge"}, 1)) }, store.ErrConflict},
		{"update missing", func(s store.Store) error { return ignore(s.UpdateGroup(ctx, store.Group{Name: "nope"}, 1)) }, store.ErrNotFound},
		{"create host", func(s store.Store) error { return ignore(s.CreateHost(ctx, store.Host{Name: "h1"})) }, nil},
		{"create host again", func(s store.Store) error { return ignore(s.CreateHost(ctx, store.Host{Name: "h1"})) }, store.ErrExists},
		{"create host 2", func(s store.Store) error { return ignore(s.CreateHost(ctx, store.Host{Name: "h2"})) }, nil},
		{"instance missing group", func(s store.Store) error { return ignore(s.CreateInstance(ctx, inst("i1", "nope", "h1"))) }, store.ErrNotFound},
		{"instance missing host", func(s store.Store) error { return ignore(s.CreateInstance(ctx, inst("i1", "edge", "nope"))) }, store.ErrNotFound},
		{"create instance", func(s store.Store) error { return ignore(s.CreateInstance(ctx, inst("i1", "edge", "h1"))) }, nil},
		{"create instance 2", func(s store.Store) error { return ignore(s.CreateInstance(ctx, inst("i2", "api", "h1"))) }, nil},
		{"instance name unique in domain", func(s store.Store) error { return ignore(s.CreateInstance(ctx, inst("i1", "api", "h2"))) }, store.ErrExists},
		{"update instance missing", func(s store.Store) error { return ignore(s.UpdateInstance(ctx, inst("nope", "api", "h2"))) }, store.ErrNotFound},
		{"update instance bad host", func(s store.Store) error { return ignore(s.UpdateInstance(ctx, inst("i2", "api", "nope"))) }, store.ErrNotFound},
		{"move instance", func(s store.Store) error { return ignore(s.UpdateInstance(ctx, inst("i2", "api", "h2"))) }, nil},
		{"delete group with instances", func(s store.Store) error { return s.DeleteGroup(ctx, "edge") }, store.ErrInUse},
		{"delete host with instances", func(s store.Store) error { return s.DeleteHost(ctx, "h1") }, store.ErrInUse},
		{"delete missing group", func(s store.Store) error { return s.DeleteGroup(ctx, "nope") }, store.ErrNotFound},
		{"delete missing host", func(s store.Store) error { return s.DeleteHost(ctx, "nope") }, store.ErrNotFound},
		{"delete missing instance", func(s store.Store) error { return s.DeleteInstance(ctx, "nope") }, store.ErrNotFound},
	})

	if err := func() error { _, err := s.CreateInstance(ctx, inst("x", "nope", "h1")); return err }(); err == nil || !strings.Contains(err.Error(), `group "nope"`) {
		t.Errorf("missing group error %v does not name the group", err)
	}
	g := must[store.Group](t)(s.GetGroup(ctx, "edge"))
	if g.Version != 2 || g.Description != "d" || g.Labels != nil || g.Type != store.GroupTypeGateway || g.UpdatedAt.Before(g.CreatedAt) {
		t.Errorf("updated group %+v", g)
	}
	if names := groupNames(must[[]store.Group](t)(s.ListGroups(ctx))); !slices.Equal(names, []string{"api", "edge"}) {
		t.Errorf("groups %v, want sorted by name", names)
	}
	i2 := must[store.Instance](t)(s.GetInstance(ctx, "i2"))
	if i2.Host != "h2" || i2.CreatedAt.IsZero() || i2.UpdatedAt.Before(i2.CreatedAt) {
		t.Errorf("moved instance %+v", i2)
	}

	for _, tc := range []struct {
		f    store.InstanceFilter
		want []string
	}{
		{store.InstanceFilter{}, []string{"i1", "i2"}},
		{store.InstanceFilter{Group: "edge"}, []string{"i1"}},
		{store.InstanceFilter{Host: "h2"}, []string{"i2"}},
		{store.InstanceFilter{Group: "edge", Host: "h2"}, []string{}},
	} {
		list := must[[]store.Instance](t)(s.ListInstances(ctx, tc.f))
		got := []string{}
		for _, in := range list {
			got = append(got, in.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ListInstances(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}

	// Deleting a group takes its draft and history with it.
	must[store.Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))
	must[store.Deployment](t)(s.Freeze(ctx, "edge", 1, signer("ann")))
	run(t, s, []step{
		{"delete instance", func(s store.Store) error { return s.DeleteInstance(ctx, "i1") }, nil},
		{"delete emptied group", func(s store.Store) error { return s.DeleteGroup(ctx, "edge") }, nil},
		{"delete host still used by i2", func(s store.Store) error { return s.DeleteHost(ctx, "h2") }, store.ErrInUse},
		{"delete emptied host", func(s store.Store) error { return s.DeleteHost(ctx, "h1") }, nil},
		{"recreate group", func(s store.Store) error { return ignore(s.CreateGroup(ctx, store.Group{Name: "edge"})) }, nil},
	})
	if d := must[store.Draft](t)(s.GetDraft(ctx, "edge")); d.Version != 0 {
		t.Errorf("recreated group has the old draft %+v", d)
	}
	if _, err := s.LatestDeployment(ctx, "edge"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("recreated group has old deployments: %v", err)
	}
}

func groupNames(gs []store.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func testDraftOptimisticConcurrency(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	run(t, s, []step{
		{"draft of missing group", func(s store.Store) error { return ignore(s.GetDraft(ctx, "nope")) }, store.ErrNotFound},
		{"put draft of missing group", func(s store.Store) error { return ignore(s.PutDraft(ctx, "nope", cfg("a"), 0, "ann")) }, store.ErrNotFound},
	})
	if d := must[store.Draft](t)(s.GetDraft(ctx, "edge")); d.Version != 0 || d.Group != "edge" {
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
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1 (%v)", round, won, errs)
		}
		d := must[store.Draft](t)(s.GetDraft(ctx, "edge"))
		if d.Version != round+1 || d.Config.Upstreams[0].Name != d.UpdatedBy {
			t.Fatalf("round %d: draft %+v", round, d)
		}
	}
}

// signer stands for the API's validate-encode-sign step.
func signer(author string) func(d store.Draft, number uint64) (store.Deployment, error) {
	return func(d store.Draft, number uint64) (store.Deployment, error) {
		body, err := d.Config.Canonical()
		if err != nil {
			return store.Deployment{}, err
		}
		sum, err := d.Config.Checksum()
		if err != nil {
			return store.Deployment{}, err
		}
		return store.Deployment{Config: body, Checksum: sum, Signature: []byte("sig"), Author: author}, nil
	}
}

func testFreeze(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	d := must[store.Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))

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
		{"stale draft version", func(s store.Store) error { return ignore(s.Freeze(ctx, "edge", d.Version-1, signer("x"))) }, store.ErrConflict},
		{"missing group", func(s store.Store) error { return ignore(s.Freeze(ctx, "nope", 0, signer("x"))) }, store.ErrNotFound},
		{"build fails", func(s store.Store) error {
			return ignore(s.Freeze(ctx, "edge", d.Version, func(store.Draft, uint64) (store.Deployment, error) { return store.Deployment{}, buildErr }))
		}, buildErr},
		{"draft changes underneath", func(s store.Store) error { return ignore(s.PutDraft(ctx, "edge", cfg("b"), d.Version, "bob")) }, nil},
		{"freeze the old version", func(s store.Store) error { return ignore(s.Freeze(ctx, "edge", d.Version, signer("x"))) }, store.ErrConflict},
	})
	latest := must[store.Deployment](t)(s.LatestDeployment(ctx, "edge"))
	if latest.Number != n {
		t.Fatalf("failed freezes stored deployment %d", latest.Number)
	}
	next := must[store.Deployment](t)(s.Freeze(ctx, "edge", d.Version+1, signer("bob")))
	b := cfg("b")
	want := must[[]byte](t)(b.Canonical())
	if next.Number != n+1 || next.Group != "edge" || string(next.Config) != string(want) || next.CreatedAt.IsZero() {
		t.Errorf("freeze of the new draft: %+v", next)
	}
}

// deployDraft freezes the group's draft (version 1) with a message.
func deployDraft(s store.Store, group, message string) error {
	_, err := s.Freeze(ctx, group, 1, func(d store.Draft, number uint64) (store.Deployment, error) {
		dep, err := signer("ann")(d, number)
		dep.Message = message
		return dep, err
	})
	return err
}

func testDeployments(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "api"}))
	must[store.Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))
	must[store.Draft](t)(s.PutDraft(ctx, "api", cfg("a"), 0, "ann"))
	var seen uint64
	rollback := func(to uint64) func(s store.Store) error {
		return func(s store.Store) error {
			_, err := s.Rollback(ctx, "edge", to, func(src store.Deployment, number uint64) (store.Deployment, error) {
				seen = src.Number
				src.Message = fmt.Sprintf("roll back to %d as %d", to, number)
				return src, nil
			})
			return err
		}
	}
	run(t, s, []step{
		{"latest of none", func(s store.Store) error { return ignore(s.LatestDeployment(ctx, "edge")) }, store.ErrNotFound},
		{"get of none", func(s store.Store) error { return ignore(s.GetDeployment(ctx, "edge", 1)) }, store.ErrNotFound},
		{"rollback with none", rollback(1), store.ErrNotFound},
		{"missing group", func(s store.Store) error { return deployDraft(s, "nope", "") }, store.ErrNotFound},
		{"list missing group", func(s store.Store) error { return ignore(s.ListDeployments(ctx, "nope")) }, store.ErrNotFound},
		{"first", func(s store.Store) error { return deployDraft(s, "edge", "one") }, nil},
		{"second", func(s store.Store) error { return deployDraft(s, "edge", "two") }, nil},
		{"other group counts apart", func(s store.Store) error { return deployDraft(s, "api", "") }, nil},
		{"rollback to missing", rollback(9), store.ErrNotFound},
		{"rollback", rollback(1), nil},
		{"get missing number", func(s store.Store) error { return ignore(s.GetDeployment(ctx, "edge", 4)) }, store.ErrNotFound},
	})
	if seen != 1 {
		t.Errorf("rollback built from deployment %d, want 1", seen)
	}
	list := must[[]store.Deployment](t)(s.ListDeployments(ctx, "edge"))
	var got []uint64
	for _, d := range list {
		got = append(got, d.Number)
	}
	if !slices.Equal(got, []uint64{3, 2, 1}) {
		t.Errorf("deployments %v, want newest first", got)
	}
	if d := must[store.Deployment](t)(s.GetDeployment(ctx, "edge", 2)); d.Message != "two" {
		t.Errorf("deployment 2: %+v", d)
	}
	if d := must[store.Deployment](t)(s.LatestDeployment(ctx, "edge")); d.Number != 3 || d.RollbackOf != 1 || d.Message != "roll back to 1 as 3" {
		t.Errorf("latest %+v", d)
	}
	if d := must[store.Deployment](t)(s.LatestDeployment(ctx, "api")); d.Number != 1 {
		t.Errorf("api numbering shares edge's: %+v", d)
	}
	// An empty list, not nil, so that the API encodes [] rather than null.
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "new"}))
	if l := must[[]store.Deployment](t)(s.ListDeployments(ctx, "new")); l == nil || len(l) != 0 {
		t.Errorf("deployments of a new group: %#v", l)
	}
}

func testUsersRolesBindingsTokens(t *testing.T, open Opener) {
	s := open(t)
	var annToken, bobToken store.Token
	var annBinding store.RoleBinding
	run(t, s, []step{
		{"create ann", func(s store.Store) error {
			return ignore(s.CreateUser(ctx, store.User{Name: "ann", PasswordHash: "h1"}))
		}, nil},
		{"create ann again", func(s store.Store) error { return ignore(s.CreateUser(ctx, store.User{Name: "ann"})) }, store.ErrExists},
		{"create bob", func(s store.Store) error { return ignore(s.CreateUser(ctx, store.User{Name: "bob"})) }, nil},
		{"update missing user", func(s store.Store) error { return ignore(s.UpdateUser(ctx, store.User{Name: "nope"})) }, store.ErrNotFound},
		{"disable bob", func(s store.Store) error {
			return ignore(s.UpdateUser(ctx, store.User{Name: "bob", Disabled: true, PasswordHash: "h2"}))
		}, nil},
		{"create role", func(s store.Store) error {
			return ignore(s.CreateRole(ctx, store.Role{Name: "deployer", Permissions: []string{"deploy"}}))
		}, nil},
		{"create role again", func(s store.Store) error { return ignore(s.CreateRole(ctx, store.Role{Name: "deployer"})) }, store.ErrExists},
		{"update role", func(s store.Store) error {
			return ignore(s.UpdateRole(ctx, store.Role{Name: "deployer", Permissions: []string{"deploy", "read"}}))
		}, nil},
		{"update missing role", func(s store.Store) error { return ignore(s.UpdateRole(ctx, store.Role{Name: "nope"})) }, store.ErrNotFound},
		{"binding without scope", func(s store.Store) error {
			return ignore(s.CreateRoleBinding(ctx, store.RoleBinding{User: "ann", Role: "deployer"}))
		}, store.ErrInvalid},
		{"binding with two scopes", func(s store.Store) error {
			return ignore(s.CreateRoleBinding(ctx, store.RoleBinding{User: "ann", Role: "deployer", Scope: store.Scope{Domain: true, Groups: []string{"edge"}}}))
		}, store.ErrInvalid},
		{"binding of missing user", func(s store.Store) error {
			return ignore(s.CreateRoleBinding(ctx, store.RoleBinding{User: "nope", Role: "deployer", Scope: store.Scope{Domain: true}}))
		}, store.ErrNotFound},
		{"binding of missing role", func(s store.Store) error {
			return ignore(s.CreateRoleBinding(ctx, store.RoleBinding{User: "ann", Role: "nope", Scope: store.Scope{Domain: true}}))
		}, store.ErrNotFound},
		{"bind ann", func(s store.Store) (err error) {
			annBinding, err = s.CreateRoleBinding(ctx, store.RoleBinding{User: "ann", Role: "deployer", Scope: store.Scope{Groups: []string{"edge"}}})
			return err
		}, nil},
		{"bind bob", func(s store.Store) error {
			return ignore(s.CreateRoleBinding(ctx, store.RoleBinding{User: "bob", Role: "deployer", Scope: store.Scope{Selector: map[string]string{"env": "dev"}}}))
		}, nil},
		{"delete bound role", func(s store.Store) error { return s.DeleteRole(ctx, "deployer") }, store.ErrInUse},
		{"token of missing user", func(s store.Store) error { return ignore(s.CreateToken(ctx, store.Token{User: "nope"})) }, store.ErrNotFound},
		{"ann token", func(s store.Store) (err error) {
			annToken, err = s.CreateToken(ctx, store.Token{User: "ann", Name: "ci", SecretHash: "x", ExpiresAt: t0.Add(time.Hour)})
			return err
		}, nil},
		{"ann second token", func(s store.Store) error {
			return ignore(s.CreateToken(ctx, store.Token{User: "ann", SecretHash: "y"}))
		}, nil},
		{"bob token", func(s store.Store) (err error) {
			bobToken, err = s.CreateToken(ctx, store.Token{ID: "bob-1", User: "bob"})
			return err
		}, nil},
		{"token id taken", func(s store.Store) error { return ignore(s.CreateToken(ctx, store.Token{ID: "bob-1", User: "ann"})) }, store.ErrExists},
		{"touch", func(s store.Store) error { return s.TouchToken(ctx, annToken.ID, t0) }, nil},
		{"touch missing", func(s store.Store) error { return s.TouchToken(ctx, "nope", t0) }, store.ErrNotFound},
		{"revoke missing", func(s store.Store) error { return s.RevokeToken(ctx, "nope") }, store.ErrNotFound},
		{"delete ann", func(s store.Store) error { return s.DeleteUser(ctx, "ann") }, nil},
		{"delete ann again", func(s store.Store) error { return s.DeleteUser(ctx, "ann") }, store.ErrNotFound},
		{"ann's binding gone", func(s store.Store) error { return ignore(s.GetRoleBinding(ctx, annBinding.ID)) }, store.ErrNotFound},
		{"delete missing binding", func(s store.Store) error { return s.DeleteRoleBinding(ctx, annBinding.ID) }, store.ErrNotFound},
	})
	if annBinding.ID == "" || len(annToken.ID) != 32 || bobToken.ID != "bob-1" {
		t.Errorf("IDs: binding %q, tokens %q %q", annBinding.ID, annToken.ID, bobToken.ID)
	}
	bob := must[store.User](t)(s.GetUser(ctx, "bob"))
	if !bob.Disabled || bob.PasswordHash != "h2" || bob.CreatedAt.IsZero() {
		t.Errorf("bob %+v", bob)
	}
	tokens := must[[]store.Token](t)(s.ListTokens(ctx, "ann"))
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
	if tok := must[store.Token](t)(s.GetToken(ctx, "bob-1")); tok.Revoked {
		t.Error("bob's token revoked with ann")
	}
	if bs := must[[]store.RoleBinding](t)(s.ListRoleBindings(ctx, "")); len(bs) != 1 || bs[0].User != "bob" || bs[0].Scope.Selector["env"] != "dev" {
		t.Errorf("bindings after deleting ann: %+v", bs)
	}
	run(t, s, []step{
		{"revoke bob's", func(s store.Store) error { return s.RevokeToken(ctx, "bob-1") }, nil},
		{"delete bob's binding", func(s store.Store) error {
			bs, _ := s.ListRoleBindings(ctx, "bob")
			return s.DeleteRoleBinding(ctx, bs[0].ID)
		}, nil},
		{"delete unbound role", func(s store.Store) error { return s.DeleteRole(ctx, "deployer") }, nil},
		{"role gone", func(s store.Store) error { return ignore(s.GetRole(ctx, "deployer")) }, store.ErrNotFound},
	})
	if tok := must[store.Token](t)(s.GetToken(ctx, "bob-1")); !tok.Revoked {
		t.Error("revoke did not stick")
	}
	if us := must[[]store.User](t)(s.ListUsers(ctx)); len(us) != 1 || us[0].Name != "bob" {
		t.Errorf("users %+v", us)
	}
}

func testAudit(t *testing.T, open Opener) {
	s := open(t)
	entries := []store.AuditEntry{
		{User: "ann", Action: "group.create", Group: "edge", Result: store.AuditOK},
		{User: "bob", Action: "draft.put", Group: "edge", Result: store.AuditOK},
		{User: "ann", Action: "deploy", Group: "edge", Result: store.AuditOK},
		{User: "bob", Action: "deploy", Group: "api", Result: store.AuditDenied},
		{User: "ann", Action: "deploy", Group: "api", Result: store.AuditOK},
		{User: "ann", Action: "user.delete", Result: store.AuditError},
	}
	for i, e := range entries {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		got := must[store.AuditEntry](t)(s.AppendAudit(ctx, e))
		if got.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, got.Seq)
		}
	}
	if e := must[store.AuditEntry](t)(s.AppendAudit(ctx, store.AuditEntry{User: "x", Action: "now"})); e.Time.IsZero() || e.Seq != 7 {
		t.Errorf("entry without time: %+v", e)
	}

	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []uint64
	}{
		{"all newest first", store.AuditFilter{}, []uint64{7, 6, 5, 4, 3, 2, 1}},
		{"user", store.AuditFilter{User: "bob"}, []uint64{4, 2}},
		{"action", store.AuditFilter{Action: "deploy"}, []uint64{5, 4, 3}},
		{"group", store.AuditFilter{Group: "api"}, []uint64{5, 4}},
		{"user and action", store.AuditFilter{User: "ann", Action: "deploy"}, []uint64{5, 3}},
		{"since inclusive, until exclusive", store.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(4 * time.Minute)}, []uint64{4, 3, 2}},
		{"limit", store.AuditFilter{Limit: 2}, []uint64{7, 6}},
		{"filtered limit", store.AuditFilter{User: "ann", Limit: 2}, []uint64{6, 5}},
		{"cursor", store.AuditFilter{Before: 5}, []uint64{4, 3, 2, 1}},
		{"cursor and limit", store.AuditFilter{Before: 5, Limit: 2}, []uint64{4, 3}},
		{"cursor beyond the end", store.AuditFilter{Before: 100, Limit: 1}, []uint64{7}},
		{"cursor at the start", store.AuditFilter{Before: 1}, []uint64{}},
		{"no match", store.AuditFilter{User: "nobody"}, []uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := must[[]store.AuditEntry](t)(s.ListAudit(ctx, tc.f))
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
	st := reflect.TypeFor[store.Store]()
	for i := range st.NumMethod() {
		if m := st.Method(i).Name; strings.Contains(m, "Audit") && m != "AppendAudit" && m != "ListAudit" {
			t.Errorf("Store has %s: the audit log must be append-only", m)
		}
	}
}

func testCancelledContext(t *testing.T, open Opener) {
	s := open(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.CreateGroup(c, store.Group{Name: "edge"}); !errors.Is(err, context.Canceled) {
		t.Errorf("create with cancelled context: %v", err)
	}
	if _, err := s.GetGroup(ctx, "edge"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancelled create stored the group: %v", err)
	}
}

func testInstanceStates(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	must[store.Host](t)(s.CreateHost(ctx, store.Host{Name: "h1"}))
	must[store.Instance](t)(s.CreateInstance(ctx, store.Instance{Name: "i1", Group: "edge", Host: "h1"}))
	must[store.Instance](t)(s.CreateInstance(ctx, store.Instance{Name: "i2", Group: "edge", Host: "h1"}))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("X", 3600))
	run(t, s, []step{
		{"state of a missing instance", func(s store.Store) error { return s.PutInstanceState(ctx, store.InstanceState{Instance: "nope"}) }, store.ErrNotFound},
		{"first heartbeat", func(s store.Store) error {
			return s.PutInstanceState(ctx, store.InstanceState{Instance: "i2", LastHeartbeat: at, AppliedDeployment: 3, Ready: true})
		}, nil},
		{"i1 heartbeat", func(s store.Store) error {
			return s.PutInstanceState(ctx, store.InstanceState{Instance: "i1", LastHeartbeat: at})
		}, nil},
		{"next heartbeat replaces", func(s store.Store) error {
			return s.PutInstanceState(ctx, store.InstanceState{Instance: "i2", LastHeartbeat: at.Add(time.Second), AppliedDeployment: 4})
		}, nil},
		{"delete i1 forgets its state", func(s store.Store) error { return s.DeleteInstance(ctx, "i1") }, nil},
	})
	got := must[[]store.InstanceState](t)(s.ListInstanceStates(ctx))
	want := []store.InstanceState{{Instance: "i2", LastHeartbeat: at.Add(time.Second).UTC(), AppliedDeployment: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("states %+v, want %+v", got, want)
	}
}

func testJoinTokensAndNodeCerts(t *testing.T, open Opener) {
	s := open(t)
	must[store.Host](t)(s.CreateHost(ctx, store.Host{Name: "h1"}))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tok := must[store.JoinToken](t)(s.CreateJoinToken(ctx, store.JoinToken{Host: "h1", SecretHash: "x", ExpiresAt: at.Add(time.Hour)}))
	refuse := errors.New("refused by check")
	run(t, s, []step{
		{"token for a missing host", func(s store.Store) error { return ignore(s.CreateJoinToken(ctx, store.JoinToken{Host: "nope"})) }, store.ErrNotFound},
		{"unknown token", func(s store.Store) error {
			return ignore(s.UseJoinToken(ctx, "nope", at, func(store.JoinToken) error { return nil }))
		}, store.ErrNotFound},
		{"check refuses", func(s store.Store) error {
			return ignore(s.UseJoinToken(ctx, tok.ID, at, func(store.JoinToken) error { return refuse }))
		}, refuse},
		{"use", func(s store.Store) error {
			return ignore(s.UseJoinToken(ctx, tok.ID, at, func(store.JoinToken) error { return nil }))
		}, nil},
		{"use again", func(s store.Store) error {
			return ignore(s.UseJoinToken(ctx, tok.ID, at, func(store.JoinToken) error { return nil }))
		}, store.ErrConflict},
		{"cert", func(s store.Store) error {
			return s.AddNodeCert(ctx, store.NodeCert{Serial: "0a", Host: "h1", NotAfter: at})
		}, nil},
		{"same serial", func(s store.Store) error { return s.AddNodeCert(ctx, store.NodeCert{Serial: "0a", Host: "h1"}) }, store.ErrExists},
		{"cert for a missing host", func(s store.Store) error { return s.AddNodeCert(ctx, store.NodeCert{Serial: "0b", Host: "nope"}) }, store.ErrNotFound},
		{"delete the host", func(s store.Store) error { return s.DeleteHost(ctx, "h1") }, nil},
	})
	if l := must[[]store.JoinToken](t)(s.ListJoinTokens(ctx)); len(l) != 1 || !l[0].UsedAt.Equal(at) {
		t.Errorf("join tokens %+v", l)
	}
	if c := must[store.NodeCert](t)(s.GetNodeCert(ctx, "0a")); !c.Revoked {
		t.Errorf("certificate of a deleted host not revoked: %+v", c)
	}
}

func testPutInstanceStatesSkipsMissing(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	must[store.Host](t)(s.CreateHost(ctx, store.Host{Name: "h1"}))
	must[store.Instance](t)(s.CreateInstance(ctx, store.Instance{Name: "i1", Group: "edge", Host: "h1"}))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	err := s.PutInstanceStates(ctx, []store.InstanceState{{Instance: "i1", LastHeartbeat: at, Ready: true}, {Instance: "gone", LastHeartbeat: at}})
	if err != nil {
		t.Fatal(err)
	}
	got := must[[]store.InstanceState](t)(s.ListInstanceStates(ctx))
	if len(got) != 1 || got[0].Instance != "i1" || !got[0].Ready {
		t.Errorf("states %+v", got)
	}
}

func testGossipKeysAndHostAddress(t *testing.T, open Opener) {
	s := open(t)
	g := must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	must[store.Host](t)(s.CreateHost(ctx, store.Host{Name: "h1"}))
	keys := [][]byte{[]byte("k2"), []byte("k1")}
	got := must[store.Group](t)(s.SetGossipKeys(ctx, "edge", keys))
	if got.Version != g.Version || len(got.GossipKeys) != 2 {
		t.Errorf("after SetGossipKeys: %+v", got)
	}
	// An update of the group's labels keeps the keys.
	must[store.Group](t)(s.UpdateGroup(ctx, store.Group{Name: "edge", Labels: map[string]string{"a": "b"}}, g.Version))
	if got := must[store.Group](t)(s.GetGroup(ctx, "edge")); !reflect.DeepEqual(got.GossipKeys, keys) {
		t.Errorf("keys after an update: %q", got.GossipKeys)
	}
	run(t, s, []step{
		{"address", func(s store.Store) error { return s.SetHostAddress(ctx, "h1", "10.0.0.5") }, nil},
		{"address of a missing host", func(s store.Store) error { return s.SetHostAddress(ctx, "nope", "x") }, store.ErrNotFound},
		{"keys of a missing group", func(s store.Store) error { return ignore(s.SetGossipKeys(ctx, "nope", nil)) }, store.ErrNotFound},
	})
	if h := must[store.Host](t)(s.GetHost(ctx, "h1")); h.Address != "10.0.0.5" {
		t.Errorf("host %+v", h)
	}
}

// The domain's publish keys are changed in one transaction: of two
// writers that each add a key only when there is none, one adds it.
func testPublishKeys(t *testing.T, open Opener) {
	s := open(t)
	keep := func(keys [][]byte) ([][]byte, error) { return keys, nil }
	if _, err := s.UpdatePublishKeys(ctx, keep); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("keys before init: %v, want ErrNotFound", err)
	}
	if err := s.InitDomain(ctx, store.Domain{Name: "prod", CACertPEM: "pem"}); err != nil {
		t.Fatal(err)
	}
	firstOnly := func(k string) func([][]byte) ([][]byte, error) {
		return func(keys [][]byte) ([][]byte, error) {
			if len(keys) > 0 {
				return keys, nil
			}
			return [][]byte{[]byte(k)}, nil
		}
	}
	var wg sync.WaitGroup
	got := make([][][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys, err := s.UpdatePublishKeys(ctx, firstOnly(fmt.Sprint("k", i)))
			if err != nil {
				t.Error(err)
			}
			got[i] = keys
		}()
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != 1 || !bytes.Equal(got[i][0], got[0][0]) {
			t.Fatalf("concurrent first keys: %q", got)
		}
	}
	rotated := must[[][]byte](t)(s.UpdatePublishKeys(ctx, func(keys [][]byte) ([][]byte, error) {
		return [][]byte{[]byte("new"), keys[0]}, nil
	}))
	refused := errors.New("refused")
	if _, err := s.UpdatePublishKeys(ctx, func([][]byte) ([][]byte, error) { return nil, refused }); !errors.Is(err, refused) {
		t.Errorf("a refusing change: %v", err)
	}
	d := must[store.Domain](t)(s.GetDomain(ctx))
	if !reflect.DeepEqual(d.PublishKeys, rotated) || len(rotated) != 2 || d.Name != "prod" || d.CACertPEM != "pem" {
		t.Errorf("domain after rotation %+v, want keys %q", d, rotated)
	}
}

// The domain's CA roots are replaced in one transaction, leaving the rest
// of the domain alone, and survive a reopen of the record.
func testCAs(t *testing.T, open Opener) {
	s := open(t)
	keep := func(cas []store.DomainCA) ([]store.DomainCA, error) { return cas, nil }
	if _, err := s.UpdateCAs(ctx, keep); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CAs before init: %v, want ErrNotFound", err)
	}
	if err := s.InitDomain(ctx, store.Domain{Name: "prod", CACertPEM: "pem", PublishKeys: [][]byte{[]byte("pk")}}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	both := must[[]store.DomainCA](t)(s.UpdateCAs(ctx, func(cas []store.DomainCA) ([]store.DomainCA, error) {
		return append([]store.DomainCA{{CertPEM: "new", KeySealed: []byte("k2"), AddedAt: at}, {CertPEM: "old", KeySealed: []byte("k1"), AddedAt: at}}, cas...), nil
	}))
	refused := errors.New("refused")
	if _, err := s.UpdateCAs(ctx, func([]store.DomainCA) ([]store.DomainCA, error) { return nil, refused }); !errors.Is(err, refused) {
		t.Errorf("a refusing change: %v", err)
	}
	d := must[store.Domain](t)(s.GetDomain(ctx))
	if !reflect.DeepEqual(d.CAs, both) || len(both) != 2 || d.CACertPEM != "pem" || len(d.PublishKeys) != 1 {
		t.Errorf("domain after rotation %+v, want CAs %+v", d, both)
	}
	retired := must[[]store.DomainCA](t)(s.UpdateCAs(ctx, func(cas []store.DomainCA) ([]store.DomainCA, error) { return cas[:1], nil }))
	if d := must[store.Domain](t)(s.GetDomain(ctx)); !reflect.DeepEqual(d.CAs, retired) || len(d.CAs) != 1 || d.CAs[0].CertPEM != "new" {
		t.Errorf("domain after retirement: %+v", d.CAs)
	}
}

// A restart request survives an update of the instance's desired state,
// and a host's capabilities are kept beside its address.
func testRestartGenerationAndCapabilities(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	must[store.Host](t)(s.CreateHost(ctx, store.Host{Name: "h1"}))
	must[store.Instance](t)(s.CreateInstance(ctx, store.Instance{Name: "i1", Group: "edge", Host: "h1"}))
	for want := uint64(1); want <= 2; want++ {
		if got := must[store.Instance](t)(s.RequestRestart(ctx, "i1")); got.RestartGeneration != want {
			t.Fatalf("restart %d: generation %d", want, got.RestartGeneration)
		}
	}
	must[store.Instance](t)(s.UpdateInstance(ctx, store.Instance{Name: "i1", Group: "edge", Host: "h1", Listen: ":9"}))
	if got := must[store.Instance](t)(s.GetInstance(ctx, "i1")); got.RestartGeneration != 2 || got.Listen != ":9" {
		t.Errorf("after an update: %+v", got)
	}
	if _, err := s.RequestRestart(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("restart of a missing instance: %v", err)
	}
	caps := store.HostCapabilities{GatewayVersion: "1.2.3", FeatureLevel: 1, Plugins: []string{"sig"}, Since: time.Now()}
	if err := s.SetHostCapabilities(ctx, "h1", caps); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHostAddress(ctx, "h1", "10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	h := must[store.Host](t)(s.GetHost(ctx, "h1"))
	if h.Capabilities == nil || h.Capabilities.GatewayVersion != "1.2.3" || !reflect.DeepEqual(h.Capabilities.Plugins, []string{"sig"}) || h.Address != "10.0.0.5" {
		t.Errorf("host %+v", h)
	}
	if err := s.SetHostCapabilities(ctx, "nope", caps); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("capabilities of a missing host: %v", err)
	}
}

// Dynamic settings of a group and of an instance are kept as set, cleared
// with nil, and survive updates of the group and of the instance.
func testGatewaySettings(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	must[store.Host](t)(s.CreateHost(ctx, store.Host{Name: "h1"}))
	must[store.Instance](t)(s.CreateInstance(ctx, store.Instance{Name: "i1", Group: "edge", Host: "h1"}))
	until := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	gs := &store.GatewaySettings{LogLevel: "debug", AccessLog: &store.AccessLogSetting{Enabled: true, SamplePercent: 10}}
	is := &store.GatewaySettings{Trace: &store.TraceSetting{Route: "orders", Until: until}}
	g := must[store.Group](t)(s.SetGroupSettings(ctx, "edge", gs))
	if g.Version != 1 || !reflect.DeepEqual(g.Settings, gs) {
		t.Errorf("group after SetGroupSettings: %+v", g)
	}
	must[store.Instance](t)(s.SetInstanceSettings(ctx, "i1", is))
	must[store.Group](t)(s.UpdateGroup(ctx, store.Group{Name: "edge", Description: "d"}, 1))
	must[store.Instance](t)(s.UpdateInstance(ctx, store.Instance{Name: "i1", Group: "edge", Host: "h1", Listen: ":9"}))
	if got := must[store.Group](t)(s.GetGroup(ctx, "edge")); !reflect.DeepEqual(got.Settings, gs) || got.Description != "d" {
		t.Errorf("group settings after an update: %+v", got)
	}
	got := must[store.Instance](t)(s.GetInstance(ctx, "i1"))
	if got.Settings == nil || got.Settings.Trace == nil || got.Settings.Trace.Route != "orders" || !got.Settings.Trace.Until.Equal(until) || got.Listen != ":9" {
		t.Errorf("instance settings after an update: %+v", got.Settings)
	}
	must[store.Group](t)(s.SetGroupSettings(ctx, "edge", nil))
	must[store.Instance](t)(s.SetInstanceSettings(ctx, "i1", nil))
	if g, in := must[store.Group](t)(s.GetGroup(ctx, "edge")), must[store.Instance](t)(s.GetInstance(ctx, "i1")); g.Settings != nil || in.Settings != nil {
		t.Errorf("cleared settings: %+v %+v", g.Settings, in.Settings)
	}
	if _, err := s.SetGroupSettings(ctx, "nope", gs); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("settings of a missing group: %v", err)
	}
	if _, err := s.SetInstanceSettings(ctx, "nope", gs); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("settings of a missing instance: %v", err)
	}
}
