package store

import (
	"fmt"
	"maps"
	"testing"

	"github.com/gatehouse/gatehouse/internal/boltfile"
	bolt "go.etcd.io/bbolt"
)

// setValues is a change of UpdateEnvironment setting values.
func setValues(kv map[string]string) func(e *Environment) error {
	return func(e *Environment) error {
		if e.Values == nil {
			e.Values = map[string]string{}
		}
		maps.Copy(e.Values, kv)
		return nil
	}
}

// A version 4 file (no settings buckets) upgrades in place, keeps its
// records and takes settings.
func TestUpgradeFromVersion4(t *testing.T) {
	s, path := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	must[User](t)(s.CreateUser(ctx, User{Name: "ann"}))
	s.Close()
	s2 := reopenAtSchema(t, path, "4", bucketEnvironments, bucketSecrets, bucketTrusted)
	if _, err := s2.GetGroup(ctx, "edge"); err != nil {
		t.Errorf("group after upgrade: %v", err)
	}
	if _, err := s2.GetUser(ctx, "ann"); err != nil {
		t.Errorf("user after upgrade: %v", err)
	}
	must[Environment](t)(s2.UpdateEnvironment(ctx, "prod", "ann", setValues(map[string]string{"A": "1"})))
	must[Secret](t)(s2.PutSecret(ctx, Secret{Environment: "prod", Name: "S", Sealed: []byte("x")}))
	must[TrustedDomain](t)(s2.PutTrustedDomain(ctx, TrustedDomain{Name: "dev", PublicKey: []byte("k")}))
	err := s2.db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(boltfile.MetaBucket).Get(boltfile.SchemaKey)); v != fmt.Sprint(SchemaVersion) {
			t.Errorf("schema after upgrade %s", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A version 5 file (no release buckets) upgrades in place and takes
// releases.
func TestUpgradeFromVersion5(t *testing.T) {
	s, path := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	s.Close()
	s2 := reopenAtSchema(t, path, "5", bucketReleases, bucketReleaseBinaries)
	must[Release](t)(s2.PutRelease(ctx, Release{Version: "1.0"}, []byte("bin")))
	g := must[Group](t)(s2.UpdateGroupGateway(ctx, "edge", func(gw *GroupGateway) error { gw.Version = "1.0"; return nil }))
	if g.Gateway.Version != "1.0" {
		t.Errorf("group after upgrade: %+v", g)
	}
}

// A version 6 file (no admin certificates bucket) upgrades in place and
// takes admin certificates.
func TestUpgradeFromVersion6(t *testing.T) {
	s, path := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	s.Close()
	s2 := reopenAtSchema(t, path, "6", bucketAdminCerts)
	if err := s2.PutAdminCert(ctx, AdminCert{Node: "a/:8090", DER: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if got := must[[]AdminCert](t)(s2.ListAdminCerts(ctx)); len(got) != 1 || got[0].Node != "a/:8090" {
		t.Errorf("admin certificates after upgrade: %+v", got)
	}
	if _, err := s2.GetGroup(ctx, "edge"); err != nil {
		t.Errorf("group after upgrade: %v", err)
	}
}
