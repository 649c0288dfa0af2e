package nodemanager

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// A gateway's blocking query of its deployment is answered when its own
// answer changes (its group's deployment, its gossip seeds or keys), not
// for every change the node manager stores: another group's deployment or
// instance left it waiting, and before, it was sent the deployment it
// already ran.
func TestDeploymentWatchWakesOnlyForItsOwnAnswer(t *testing.T) {
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	web := func(seeds ...string) apitypes.AgentInstance {
		return apitypes.AgentInstance{Name: "web-1", Group: "web", StatusListen: "127.0.0.1:1",
			Gossip: &apitypes.AgentGossip{Listen: ":7946", Seeds: seeds, Keys: []string{"a2V5"}}}
	}
	api := func(status string) apitypes.AgentInstance {
		return apitypes.AgentInstance{Name: "api-1", Group: "api", StatusListen: status}
	}
	deployment := func(group string, n uint64) *deploy.Deployment {
		return &deploy.Deployment{Domain: "d", Group: group, Number: n, Checksum: "sha256:" + group,
			Config: json.RawMessage(`{}`), Signature: []byte{byte(n)}}
	}
	a := &agent{log: hclog.NewNullLogger(), state: st, sup: &restartRecorder{}, now: time.Now, changed: newBroadcast(),
		kick: make(chan struct{}, 1), reports: map[string]report{}, stopping: make(chan struct{})}
	a.localIndex.Store(100)
	// change stores what the node manager's watches would and wakes the
	// blocking queries, as they do.
	change := func(store func() error) {
		t.Helper()
		if err := store(); err != nil {
			t.Fatal(err)
		}
		a.localIndex.Add(1)
		a.changed.notify()
	}
	change(func() error {
		return st.PutInstances(1, []apitypes.AgentInstance{web("10.0.0.2:7946"), api("127.0.0.1:2")})
	})
	change(func() error { _, err := st.PutDeployment(deployment("web", 1)); return err })

	secret, err := st.Secret("web-1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.localHandler(prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	c, err := localapi.New(srv.URL, "web-1", secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	watch := func(index uint64, wait time.Duration) localapi.DeploymentAnswer {
		t.Helper()
		ans, err := c.WatchDeployment(ctx, index, wait)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	first := watch(0, time.Second)
	if first.Deployment == nil || first.Deployment.Number != 1 {
		t.Fatalf("first answer: %+v, want deployment 1", first.Deployment)
	}

	// Changes of another group and instance: web-1's query runs out its
	// wait and answers the index it was given, nothing new.
	change(func() error { _, err := st.PutDeployment(deployment("api", 1)); return err })
	change(func() error {
		return st.PutInstances(2, []apitypes.AgentInstance{web("10.0.0.2:7946"), api("127.0.0.1:3")})
	})
	if ans := watch(first.Index, 300*time.Millisecond); ans.Index != first.Index {
		t.Fatalf("after changes of another group, web-1 was answered index %d (was %d): woken for nothing", ans.Index, first.Index)
	}

	// Its group's new deployment, then its new seeds: answered each time.
	change(func() error { _, err := st.PutDeployment(deployment("web", 2)); return err })
	second := watch(first.Index, 5*time.Second)
	if second.Index == first.Index || second.Deployment == nil || second.Deployment.Number != 2 {
		t.Fatalf("after web's deployment 2: index %d (was %d), deployment %+v", second.Index, first.Index, second.Deployment)
	}
	change(func() error {
		return st.PutInstances(3, []apitypes.AgentInstance{web("10.0.0.2:7946", "10.0.0.3:7946"), api("127.0.0.1:3")})
	})
	third := watch(second.Index, 5*time.Second)
	if third.Index == second.Index || third.Gossip == nil || !slices.Equal(third.Gossip.Seeds, []string{"10.0.0.2:7946", "10.0.0.3:7946"}) {
		t.Fatalf("after web-1's new seed: index %d (was %d), gossip %+v", third.Index, second.Index, third.Gossip)
	}
}

// An answer read before a change moved the local index still gets an index
// of its own when it differs from the previous one.
func TestAnswerIndexMovesWithTheAnswer(t *testing.T) {
	var x answerIndexes
	d1 := localapi.DeploymentAnswer{Deployment: &deploy.Deployment{Group: "web", Number: 1, Checksum: "sha256:1"}}
	d2 := localapi.DeploymentAnswer{Deployment: &deploy.Deployment{Group: "web", Number: 2, Checksum: "sha256:2"}}
	steps := []struct {
		what string
		ans  localapi.DeploymentAnswer
		now  uint64
		want uint64
	}{
		{"first", d1, 10, 10},
		{"same answer, later index", d1, 12, 10},
		{"new answer", d2, 13, 13},
		{"new answer read before the index moved", d1, 13, 14},
		{"that answer again once it moved", d1, 14, 14},
	}
	for _, s := range steps {
		if got := x.index("web-1", s.ans, s.now); got != s.want {
			t.Errorf("%s: index %d, want %d", s.what, got, s.want)
		}
	}
	if got := x.index("web-2", d1, 14); got != 14 {
		t.Errorf("another instance: index %d, want 14", got)
	}
}
