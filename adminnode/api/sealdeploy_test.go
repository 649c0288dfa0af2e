package api

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

func TestSealingStoreDeployments(t *testing.T) {
	raw, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	key, err := seal.Parse(seal.NewKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	s := sealingStore{Store: raw, key: key}
	must[store.Group](t)(raw.CreateGroup(bg, store.Group{Name: "g"}))
	must[store.Draft](t)(raw.PutDraft(bg, "g", deploy.Config{}, 0, "admin"))

	resolved, template := []byte(`{"key":"s3cr3t"}`), []byte(`{"key":"${secret:KEY}"}`)
	build := func(config, template []byte) func(store.Draft, uint64) (store.Deployment, error) {
		return func(store.Draft, uint64) (store.Deployment, error) {
			return store.Deployment{Config: config, Template: template, Checksum: "c"}, nil
		}
	}
	d1 := must[store.Deployment](t)(s.Freeze(bg, "g", 1, build(resolved, template)))
	if !bytes.Equal(d1.Config, resolved) {
		t.Errorf("Freeze returned %q, want the clear configuration", d1.Config)
	}
	if got := must[store.Deployment](t)(raw.GetDeployment(bg, "g", 1)); bytes.Contains(got.Config, []byte("s3cr3t")) || !bytes.Equal(got.Template, template) {
		t.Errorf("stored config %q template %q: want the config sealed, the template as it is", got.Config, got.Template)
	}
	if got := must[store.Deployment](t)(s.GetDeployment(bg, "g", 1)); !bytes.Equal(got.Config, resolved) {
		t.Errorf("GetDeployment opened %q", got.Config)
	}

	// A rollback builds from the opened source and stores it sealed again,
	// under its own number.
	d2 := must[store.Deployment](t)(s.Rollback(bg, "g", 1, func(src store.Deployment, number uint64) (store.Deployment, error) {
		if !bytes.Equal(src.Config, resolved) {
			t.Errorf("rollback source %q, want it opened", src.Config)
		}
		return store.Deployment{Config: src.Config, Template: src.Template, Checksum: src.Checksum}, nil
	}))
	stored2 := must[store.Deployment](t)(raw.GetDeployment(bg, "g", 2))
	if !bytes.Equal(d2.Config, resolved) || bytes.Contains(stored2.Config, []byte("s3cr3t")) {
		t.Errorf("rollback: returned %q, stored %q", d2.Config, stored2.Config)
	}

	// Without placeholders nothing is sealed; a configuration stored in
	// clear by an older gatehouse reads as it is.
	plain := []byte(`{"key":"public"}`)
	must[store.Deployment](t)(raw.Freeze(bg, "g", 1, build(plain, template)))
	must[store.Deployment](t)(s.Freeze(bg, "g", 1, build(plain, nil)))
	for n := uint64(3); n <= 4; n++ {
		if got := must[store.Deployment](t)(s.GetDeployment(bg, "g", n)); !bytes.Equal(got.Config, plain) {
			t.Errorf("deployment %d: %q", n, got.Config)
		}
	}
	list := must[[]store.Deployment](t)(s.ListDeployments(bg, "g"))
	if len(list) != 4 || !bytes.Equal(list[2].Config, resolved) || !bytes.Equal(list[3].Config, resolved) {
		t.Errorf("ListDeployments did not open every configuration: %d deployments", len(list))
	}

	// A sealed configuration is bound to its deployment: moved to another
	// number, it does not open.
	moved := stored2
	moved.Number = 1
	if _, err := s.open(moved); err == nil {
		t.Error("the sealed configuration of deployment 2 opened as deployment 1's")
	}
}
