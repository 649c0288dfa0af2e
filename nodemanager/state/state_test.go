package state

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/boltfile"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// The admin node's answer replaces whatever differs from it, a tampered
// copy with the same or a higher number included.
func TestDeploymentFollowsTheAdminNode(t *testing.T) {
	s, _ := open(t)
	for _, tc := range []struct {
		number uint64
		sig    string
		stored bool
	}{{2, "a", true}, {2, "a", false}, {3, "a", true}, {3, "forged", true}, {3, "a", true}, {1, "a", true}} {
		got, err := s.PutDeployment(&deploy.Deployment{Group: "edge", Number: tc.number, Signature: []byte(tc.sig)})
		if err != nil || got != tc.stored {
			t.Errorf("put deployment %d (%s): stored %t, %v; want %t", tc.number, tc.sig, got, err, tc.stored)
		}
	}
	d, err := s.Deployment("edge")
	if err != nil || d == nil || d.Number != 1 {
		t.Fatalf("deployment %+v, %v", d, err)
	}
	if d, err := s.Deployment("none"); err != nil || d != nil {
		t.Fatalf("deployment of an unknown group %+v, %v", d, err)
	}
}

func TestInstancesAndSecrets(t *testing.T) {
	s, path := open(t)
	if idx, ins, err := s.Instances(); err != nil || idx != 0 || len(ins) != 0 {
		t.Fatalf("fresh state: %d %v %v", idx, ins, err)
	}
	must(t, s.PutInstances(7, []apitypes.AgentInstance{{Name: "a", Group: "edge"}, {Name: "b", Group: "api"}}))
	if _, err := s.PutDeployment(&deploy.Deployment{Group: "api", Number: 1}); err != nil {
		t.Fatal(err)
	}
	sa, err := s.Secret("a")
	if err != nil || len(sa) < 40 {
		t.Fatalf("secret %q %v", sa, err)
	}
	if again, _ := s.Secret("a"); again != sa {
		t.Error("secret changed on a second read")
	}
	// Dropping group api's last instance forgets its deployment.
	must(t, s.PutInstances(8, []apitypes.AgentInstance{{Name: "a", Group: "edge"}}))
	if d, _ := s.Deployment("api"); d != nil {
		t.Errorf("deployment of a group without instances kept: %+v", d)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	idx, ins, err := s2.Instances()
	if err != nil || idx != 8 || len(ins) != 1 || ins[0].Name != "a" {
		t.Fatalf("after reopen: %d %+v %v", idx, ins, err)
	}
	if got, _ := s2.Secret("a"); got != sa {
		t.Error("secret not kept across a reopen")
	}
	must(t, s2.DeleteSecret("a"))
	if all, _ := s2.Secrets(); len(all) != 0 {
		t.Errorf("secrets after delete %v", all)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	s, path := open(t)
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltfile.MetaBucket).Put(boltfile.SchemaKey, []byte(fmt.Sprint(SchemaVersion+1)))
	}))
	db.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("opened a file of a newer schema")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPublishKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := s.PublishKeys(); err != nil || keys != nil {
		t.Fatalf("keys of a new file: %q, %v", keys, err)
	}
	want := [][]byte{[]byte("new-key"), []byte("old-key")}
	must(t, s.PutPublishKeys(want))
	must(t, s.PutPublishKeys(want))
	must(t, s.Close())
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if keys, err := s.PublishKeys(); err != nil || !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys after a restart: %q, %v", keys, err)
	}
}
