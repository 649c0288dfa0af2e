package storetest

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// setValues is a change of UpdateEnvironment setting values.
func setValues(kv map[string]string) func(e *store.Environment) error {
	return func(e *store.Environment) error {
		if e.Values == nil {
			e.Values = map[string]string{}
		}
		maps.Copy(e.Values, kv)
		return nil
	}
}

func testEnvironments(t *testing.T, open Opener) {
	s := open(t)
	if l := must[[]store.Environment](t)(s.ListEnvironments(ctx)); len(l) != 0 {
		t.Fatalf("environments of a new store %+v", l)
	}
	var sawNew bool
	e := must[store.Environment](t)(s.UpdateEnvironment(ctx, "prod", "ann", func(e *store.Environment) error {
		sawNew = e.Version == 0 && e.Values == nil && e.Name == "prod"
		return setValues(map[string]string{"UPSTREAM": "10.0.0.5:8080", "HOST": "api.example.com"})(e)
	}))
	if !sawNew || e.Version != 1 || e.UpdatedBy != "ann" || e.CreatedAt.IsZero() || !e.UpdatedAt.Equal(e.CreatedAt) || len(e.Values) != 2 {
		t.Fatalf("created environment %+v (change saw a new one: %t)", e, sawNew)
	}
	e2 := must[store.Environment](t)(s.UpdateEnvironment(ctx, "prod", "bob", func(e *store.Environment) error {
		delete(e.Values, "HOST")
		return nil
	}))
	if e2.Version != 2 || e2.UpdatedBy != "bob" || !e2.CreatedAt.Equal(e.CreatedAt) || !reflect.DeepEqual(e2.Values, map[string]string{"UPSTREAM": "10.0.0.5:8080"}) {
		t.Fatalf("updated environment %+v", e2)
	}
	if got := must[store.Environment](t)(s.GetEnvironment(ctx, "prod")); !reflect.DeepEqual(got, e2) {
		t.Errorf("read back %+v, want %+v", got, e2)
	}

	// A refused change writes nothing, and creates nothing.
	refuse := errors.New("refused")
	run(t, s, []step{
		{"refused change", func(s store.Store) error {
			return ignore(s.UpdateEnvironment(ctx, "prod", "eve", func(e *store.Environment) error {
				e.Values["UPSTREAM"] = "evil"
				return refuse
			}))
		}, refuse},
		{"refused creation", func(s store.Store) error {
			return ignore(s.UpdateEnvironment(ctx, "uat", "eve", func(*store.Environment) error { return refuse }))
		}, refuse},
		{"get missing", func(s store.Store) error { return ignore(s.GetEnvironment(ctx, "uat")) }, store.ErrNotFound},
		{"no name", func(s store.Store) error { return ignore(s.UpdateEnvironment(ctx, "", "x", setValues(nil))) }, store.ErrInvalid},
		{"delete missing", func(s store.Store) error { return s.DeleteEnvironment(ctx, "uat") }, store.ErrNotFound},
	})
	if got := must[store.Environment](t)(s.GetEnvironment(ctx, "prod")); got.Values["UPSTREAM"] != "10.0.0.5:8080" || got.Version != 2 {
		t.Errorf("after a refused change %+v", got)
	}

	// Removing every value keeps the environment, empty.
	empty := must[store.Environment](t)(s.UpdateEnvironment(ctx, "prod", "bob", func(e *store.Environment) error {
		e.Values = map[string]string{}
		return nil
	}))
	if empty.Values != nil || empty.Version != 3 {
		t.Errorf("emptied environment %+v", empty)
	}
	must[store.Environment](t)(s.UpdateEnvironment(ctx, "dev", "ann", setValues(map[string]string{"A": "1"})))
	var names []string
	for _, e := range must[[]store.Environment](t)(s.ListEnvironments(ctx)) {
		names = append(names, e.Name)
	}
	if fmt.Sprint(names) != "[dev prod]" {
		t.Errorf("environments %v", names)
	}
}

func testSecrets(t *testing.T, open Opener) {
	s := open(t)
	// Setting a secret creates its environment.
	sec := must[store.Secret](t)(s.PutSecret(ctx, store.Secret{Environment: "prod", Name: "DB_PASSWORD", Sealed: []byte("sealed-1"), SetBy: "ann"}))
	if sec.SetAt.IsZero() {
		t.Errorf("secret not stamped: %+v", sec)
	}
	env := must[store.Environment](t)(s.GetEnvironment(ctx, "prod"))
	if env.Version != 1 || env.UpdatedBy != "ann" {
		t.Errorf("environment made by a secret %+v", env)
	}
	must[store.Secret](t)(s.PutSecret(ctx, store.Secret{Environment: "prod", Name: "API_KEY", Sealed: []byte("sealed-2")}))
	must[store.Secret](t)(s.PutSecret(ctx, store.Secret{Environment: "prod", Name: "DB_PASSWORD", Sealed: []byte("sealed-3")}))
	must[store.Secret](t)(s.PutSecret(ctx, store.Secret{Environment: "dev", Name: "DB_PASSWORD", Sealed: []byte("sealed-4")}))
	if env := must[store.Environment](t)(s.GetEnvironment(ctx, "prod")); env.Version != 1 {
		t.Errorf("secrets bumped the environment's version: %+v", env)
	}
	got := func(env string) string {
		t.Helper()
		var out []string
		for _, s := range must[[]store.Secret](t)(s.ListSecrets(ctx, env)) {
			out = append(out, s.Environment+"/"+s.Name+"="+string(s.Sealed))
		}
		return fmt.Sprint(out)
	}
	if l := got("prod"); l != "[prod/API_KEY=sealed-2 prod/DB_PASSWORD=sealed-3]" {
		t.Errorf("secrets of prod %s", l)
	}
	if l := got(""); l != "[dev/DB_PASSWORD=sealed-4 prod/API_KEY=sealed-2 prod/DB_PASSWORD=sealed-3]" {
		t.Errorf("all secrets %s", l)
	}
	// Values and secrets live apart: editing values leaves the secrets.
	must[store.Environment](t)(s.UpdateEnvironment(ctx, "prod", "ann", setValues(map[string]string{"A": "1"})))
	run(t, s, []step{
		{"no value", func(s store.Store) error {
			return ignore(s.PutSecret(ctx, store.Secret{Environment: "prod", Name: "X"}))
		}, store.ErrInvalid},
		{"no name", func(s store.Store) error {
			return ignore(s.PutSecret(ctx, store.Secret{Environment: "prod", Sealed: []byte("x")}))
		}, store.ErrInvalid},
		{"no environment", func(s store.Store) error {
			return ignore(s.PutSecret(ctx, store.Secret{Name: "X", Sealed: []byte("x")}))
		}, store.ErrInvalid},
		{"list of a missing environment", func(s store.Store) error { return ignore(s.ListSecrets(ctx, "uat")) }, store.ErrNotFound},
		{"delete missing secret", func(s store.Store) error { return s.DeleteSecret(ctx, "prod", "NOPE") }, store.ErrNotFound},
		{"delete in missing environment", func(s store.Store) error { return s.DeleteSecret(ctx, "uat", "DB_PASSWORD") }, store.ErrNotFound},
		{"delete", func(s store.Store) error { return s.DeleteSecret(ctx, "prod", "API_KEY") }, nil},
	})
	if l := got("prod"); l != "[prod/DB_PASSWORD=sealed-3]" {
		t.Errorf("secrets of prod after a delete %s", l)
	}
	// Deleting an environment takes its secrets; recreating it does not
	// bring them back.
	if err := s.DeleteEnvironment(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	must[store.Environment](t)(s.UpdateEnvironment(ctx, "prod", "ann", setValues(nil)))
	if l := got("prod"); l != "[]" {
		t.Errorf("secrets of a recreated environment %s", l)
	}
	if l := got(""); l != "[dev/DB_PASSWORD=sealed-4]" {
		t.Errorf("all secrets after the delete %s", l)
	}
}

func testTrustedDomains(t *testing.T, open Opener) {
	s := open(t)
	key1, key2 := make([]byte, 32), make([]byte, 32)
	key2[0] = 1
	d := must[store.TrustedDomain](t)(s.PutTrustedDomain(ctx, store.TrustedDomain{Name: "dev", PublicKey: key1, AddedBy: "ann"}))
	if d.AddedAt.IsZero() {
		t.Errorf("not stamped: %+v", d)
	}
	must[store.TrustedDomain](t)(s.PutTrustedDomain(ctx, store.TrustedDomain{Name: "uat", PublicKey: key1}))
	// Put replaces: a domain's new key.
	must[store.TrustedDomain](t)(s.PutTrustedDomain(ctx, store.TrustedDomain{Name: "dev", PublicKey: key2, AddedBy: "bob"}))
	if got := must[store.TrustedDomain](t)(s.GetTrustedDomain(ctx, "dev")); !reflect.DeepEqual(got.PublicKey, key2) || got.AddedBy != "bob" {
		t.Errorf("replaced %+v", got)
	}
	run(t, s, []step{
		{"no key", func(s store.Store) error { return ignore(s.PutTrustedDomain(ctx, store.TrustedDomain{Name: "x"})) }, store.ErrInvalid},
		{"no name", func(s store.Store) error {
			return ignore(s.PutTrustedDomain(ctx, store.TrustedDomain{PublicKey: key1}))
		}, store.ErrInvalid},
		{"get missing", func(s store.Store) error { return ignore(s.GetTrustedDomain(ctx, "prod")) }, store.ErrNotFound},
		{"delete", func(s store.Store) error { return s.DeleteTrustedDomain(ctx, "uat") }, nil},
		{"delete again", func(s store.Store) error { return s.DeleteTrustedDomain(ctx, "uat") }, store.ErrNotFound},
	})
	if l := must[[]store.TrustedDomain](t)(s.ListTrustedDomains(ctx)); len(l) != 1 || l[0].Name != "dev" {
		t.Errorf("trusted domains %+v", l)
	}
}
