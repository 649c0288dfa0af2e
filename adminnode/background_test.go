package adminnode

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

type lease bool

func (l lease) Held() bool { return bool(l) }

// The background work runs only where the lease is held: an admin node
// without it leaves an instance offline past the removal threshold alone.
func TestBackgroundWorkNeedsTheLease(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pub, key, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	dom := store.Domain{Name: "test", SigningPublicKey: pub}
	if err := st.InitDomain(ctx, dom); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := st.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateHost(ctx, store.Host{Name: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateInstance(ctx, store.Instance{Name: "old", Group: "edge", Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutInstanceStates(ctx, []store.InstanceState{{Instance: "old", LastHeartbeat: now.Add(-8 * 24 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	sk, err := seal.Parse(seal.NewKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	server, err := api.New(api.Config{Store: st, Domain: dom, SigningKey: key, SettingsKey: sk})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		held bool
		kept bool
	}{{held: false, kept: true}, {held: true, kept: false}} {
		background(ctx, hclog.NewNullLogger(), server, lease(tc.held), true)
		_, err := st.GetInstance(ctx, "old")
		if kept := err == nil; kept != tc.kept || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("lease held %t: instance kept %t (%v), want %t", tc.held, kept, err, tc.kept)
		}
	}
}
