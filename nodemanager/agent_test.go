package nodemanager

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// A restart asked of the admin node reaches the supervisor as a new spec
// hash, once per generation; generation 0 (no restart ever asked, or an
// admin node that predates them) leaves the spec as it was, so that an
// upgraded node manager does not restart its gateways.
func TestRestartGenerationChangesTheSpec(t *testing.T) {
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	a := &agent{log: hclog.NewNullLogger(), state: st, binary: "/usr/bin/gatehouse",
		gatewayDataDir: func(name string) string { return "/var/lib/gatehouse/node/instances/" + name + "/data" },
		releases:       newReleases(t.TempDir(), nil, nil, hclog.NewNullLogger())}
	hash := func(gen uint64) (string, int) {
		t.Helper()
		specs, _, err := a.specs(context.Background(), []apitypes.AgentInstance{{Name: "web-1", Group: "web", RestartGeneration: gen}})
		if err != nil {
			t.Fatal(err)
		}
		return specs[0].Hash(), len(specs[0].Env)
	}
	h0, env0 := hash(0)
	if env0 != 1 {
		t.Errorf("generation 0: %d environment entries, want only the instance secret", env0)
	}
	h1, _ := hash(1)
	h1again, _ := hash(1)
	h2, _ := hash(2)
	if h0 == h1 || h1 == h2 || h0 == h2 {
		t.Errorf("hashes of generations 0, 1, 2 not all different: %s %s %s", h0, h1, h2)
	}
	if h1 != h1again {
		t.Errorf("the same generation gave two hashes: %s %s", h1, h1again)
	}
}
