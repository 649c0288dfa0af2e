package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/metrics/traffic"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// A gateway serves its traffic counts on the status port and, when it
// stops under a node manager, gives it its last ones once drained.
func TestTrafficAndLastPush(t *testing.T) {
	pub, priv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	f := startFakeNodeManager(t)
	g, err := New(Options{
		Instance: testInstance, Group: testGroup, NodeManager: f.srv.URL, DomainKey: pub, InstanceSecret: testSecret,
		Listen: "127.0.0.1:0", StatusListen: "127.0.0.1:0", Engine: EngineFasthttp,
		WatchWait: 2 * time.Second, ReportInterval: 100 * time.Millisecond, DrainTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, nil) }()
	f.publish(signed(t, priv, testGroup, 1))
	f.waitReport(t, "of deployment 1", func(r localapi.Report) bool { return r.AppliedDeployment == 1 && r.Ready })

	g.listenersMu.Lock()
	httpAddr, statusAddr := g.listeners[0].Address, g.listeners[1].Address
	g.listenersMu.Unlock()
	for _, path := range []string{"/v1", "/v1", "/nothing"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// /v1 goes to an upstream that refuses connections: 502.
	want := map[traffic.Key]uint64{
		{Service: "svc", Route: "r", Class: traffic.Class5xx}: 2,
		{Service: "", Route: "", Class: traffic.Class4xx}:     1,
	}
	check := func(what string, snap traffic.Snapshot) {
		t.Helper()
		if snap.Group != testGroup || snap.Instance != testInstance || snap.Boot != g.boot || snap.Boot == "" {
			t.Errorf("%s: names %q %q %q", what, snap.Group, snap.Instance, snap.Boot)
		}
		got := map[traffic.Key]uint64{}
		for _, s := range snap.Series {
			got[s.Key] = s.Requests
		}
		if len(got) != len(want) {
			t.Errorf("%s: series %+v, want %+v", what, got, want)
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: %+v counts %d requests, want %d", what, k, got[k], n)
			}
		}
	}
	resp, err := http.Get("http://" + statusAddr + "/traffic")
	if err != nil {
		t.Fatal(err)
	}
	var snap traffic.Snapshot
	err = json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	check("GET /traffic", snap)

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	pushes := f.pushes
	f.mu.Unlock()
	if len(pushes) != 1 {
		t.Fatalf("%d pushes of the last counts, want 1", len(pushes))
	}
	check("last push", pushes[0])
}
