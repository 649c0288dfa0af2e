package nodemanager

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/metrics/traffic"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/nodemanager/state"
	"github.com/gatehouse/gatehouse/nodemanager/supervisor"
)

var okKey = traffic.Key{Service: "s", Route: "r", Class: traffic.Class2xx}

// fakeGateway serves a gateway's /traffic with the snapshot it is given.
type fakeGateway struct {
	srv  *httptest.Server
	mu   sync.Mutex
	snap traffic.Snapshot
}

func startFakeGateway(t *testing.T, group, instance string) *fakeGateway {
	f := &fakeGateway{snap: traffic.Snapshot{Group: group, Instance: instance}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/traffic" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		json.NewEncoder(w).Encode(f.snap)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// snapshot is what a gateway of boot has served: requests on okKey.
func snapshot(group, instance, boot string, requests uint64) *traffic.Snapshot {
	c := traffic.Counts{Requests: requests, BytesOut: 10 * requests}
	c.Latency[2] = requests
	return &traffic.Snapshot{Group: group, Instance: instance, Boot: boot, At: time.Now(), Series: []traffic.Series{{Key: okKey, Counts: c}}}
}

func (f *fakeGateway) serve(boot string, requests uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap = *snapshot(f.snap.Group, f.snap.Instance, boot, requests)
}

func (f *fakeGateway) target() trafficTarget {
	f.mu.Lock()
	defer f.mu.Unlock()
	return trafficTarget{name: f.snap.Instance, group: f.snap.Group, url: f.srv.URL + "/traffic"}
}

// fakeAdmin is the admin node's traffic endpoint: it stores each (node,
// seq) once and acknowledges the highest it has.
type fakeAdmin struct {
	mu      sync.Mutex
	down    bool
	stored  map[uint64]traffic.Batch
	order   []uint64 // seqs as they were first stored
	highest uint64
}

func newFakeAdmin() *fakeAdmin { return &fakeAdmin{stored: map[uint64]traffic.Batch{}} }

func (f *fakeAdmin) SendTraffic(_ context.Context, b traffic.Batch) (traffic.Ack, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return traffic.Ack{}, errors.New("connection refused")
	}
	if _, ok := f.stored[b.Seq]; !ok {
		f.stored[b.Seq] = b
		f.order = append(f.order, b.Seq)
	}
	f.highest = max(f.highest, b.Seq)
	return traffic.Ack{Seq: f.highest}, nil
}

func (f *fakeAdmin) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func openState(t *testing.T, path string) *state.Store {
	t.Helper()
	st, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newTestCollector(t *testing.T, st *state.Store, admin trafficSender, lim state.SpoolLimits, targets func() []trafficTarget) (*collector, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := newCollector(collectorOptions{Node: "h1", Logger: hclog.NewNullLogger(), State: st, Admin: admin,
		Metrics: metrics.NewNode(reg, func() []metrics.NodeInstance { return nil }), Limits: lim, Targets: targets, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// spooled returns the batches in the spool, oldest first, acknowledging
// them as it goes.
func spooled(t *testing.T, st *state.Store) []traffic.Batch {
	t.Helper()
	var out []traffic.Batch
	for {
		b, err := st.OldestBatch()
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			return out
		}
		out = append(out, *b)
		if _, err := st.AckBatches(b.Seq); err != nil {
			t.Fatal(err)
		}
	}
}

func requestsOf(b traffic.Batch) uint64 {
	var n uint64
	for _, s := range b.Series {
		n += s.Requests
	}
	return n
}

// Increments across a gateway's restart, its last push, a reading that
// arrives after the push, and intervals without traffic.
func TestCollectDeltas(t *testing.T) {
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	gw := startFakeGateway(t, "web", "web-1")
	c, _ := newTestCollector(t, st, newFakeAdmin(), state.SpoolLimits{}, func() []trafficTarget { return []trafficTarget{gw.target()} })
	ctx := context.Background()

	gw.serve("a", 5)
	c.collect(ctx)
	gw.serve("a", 8)
	c.collect(ctx)
	c.collect(ctx) // nothing new: no batch
	gw.serve("b", 2)
	c.collect(ctx) // restarted: counts from zero
	// The gateway stops: its push is the last reading, and a reading taken
	// before it that arrives late changes nothing.
	if err := c.push("web-1", snapshot("web", "web-1", "b", 4)); err != nil {
		t.Fatal(err)
	}
	if err := c.observe(gw.target(), snapshot("web", "web-1", "b", 3)); err != nil {
		t.Fatal(err)
	}
	gw.srv.Close()
	c.collect(ctx)

	batches := spooled(t, st)
	want := []uint64{5, 3, 2, 2}
	if len(batches) != len(want) {
		t.Fatalf("%d batches, want %d: %+v", len(batches), len(want), batches)
	}
	for i, b := range batches {
		if b.Seq != uint64(i+1) || b.Node != "h1" || requestsOf(b) != want[i] || !b.End.After(b.Start) {
			t.Errorf("batch %d: %+v, want seq %d with %d requests", i, b, i+1, want[i])
		}
		s := b.Series[0]
		if s.Group != "web" || s.Instance != "web-1" || s.Key != okKey || s.BytesOut != 10*want[i] || s.Latency[2] != want[i] {
			t.Errorf("batch %d series %+v", i, s)
		}
		// Batch 3 follows an interval without traffic, which moved its
		// start.
		if i > 0 && b.Seq != 3 && !b.Start.Equal(batches[i-1].End) {
			t.Errorf("batch %d starts at %v, the previous ended at %v", i, b.Start, batches[i-1].End)
		}
	}

	// A snapshot of another instance at this one's address is not counted.
	if err := c.observe(trafficTarget{name: "web-1", group: "web"}, snapshot("web", "web-2", "c", 1)); err == nil {
		t.Error("a snapshot of another instance was taken")
	}
	if err := c.push("nobody", snapshot("web", "nobody", "c", 1)); !errors.Is(err, errUnknownInstance) {
		t.Errorf("push of an unknown instance: %v", err)
	}
}

// A node manager that restarts resumes its numbering, its spool and its
// readings: a gateway that kept serving is neither counted twice nor
// lost, and a removed instance's reading is forgotten.
func TestCollectorResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	st := openState(t, path)
	gw := startFakeGateway(t, "web", "web-1")
	targets := func() []trafficTarget { return []trafficTarget{gw.target()} }
	c, _ := newTestCollector(t, st, newFakeAdmin(), state.SpoolLimits{}, targets)
	gw.serve("a", 5)
	c.collect(context.Background())
	st.Close()

	st2 := openState(t, path)
	c2, _ := newTestCollector(t, st2, newFakeAdmin(), state.SpoolLimits{}, targets)
	gw.serve("a", 9)
	c2.collect(context.Background())
	batches := spooled(t, st2)
	if len(batches) != 2 || batches[0].Seq != 1 || requestsOf(batches[0]) != 5 || batches[1].Seq != 2 || requestsOf(batches[1]) != 4 {
		t.Fatalf("batches after a restart: %+v", batches)
	}
	if !batches[1].Start.Equal(batches[0].End) {
		t.Errorf("the first batch after a restart starts at %v, the last before it ended at %v", batches[1].Start, batches[0].End)
	}

	c3, _ := newTestCollector(t, st2, newFakeAdmin(), state.SpoolLimits{}, func() []trafficTarget { return nil })
	c3.collect(context.Background())
	if r, err := st2.TrafficReadings(); err != nil || len(r) != 0 {
		t.Fatalf("readings of a removed instance kept: %+v %v", r, err)
	}
}

// While the admin node is unreachable, batches accumulate within their
// bounds: the oldest are dropped and counted, and what is left goes in
// order once the admin node is back, carrying the count.
func TestSpoolWhileAdminIsDown(t *testing.T) {
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	gw := startFakeGateway(t, "web", "web-1")
	admin := newFakeAdmin()
	admin.setDown(true)
	lim := state.SpoolLimits{MaxBytes: 2 << 10, MaxAge: time.Hour}
	c, reg := newTestCollector(t, st, admin, lim, func() []trafficTarget { return []trafficTarget{gw.target()} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := make(chan struct{})
	go func() { defer close(sent); c.send(ctx) }()

	const intervals = 20
	for i := 1; i <= intervals; i++ {
		gw.serve("a", uint64(i*i))
		c.collect(ctx)
	}
	sp, err := st.SpoolState()
	if err != nil || sp.Dropped == 0 || sp.Bytes > lim.MaxBytes || sp.LastSeq != intervals || uint64(sp.Batches)+sp.Dropped != intervals {
		t.Fatalf("spool %+v %v", sp, err)
	}
	admin.setDown(false)
	c.spooled <- struct{}{}
	waitfor.Cond(t, 10*time.Second, "the spool emptied once the admin node is back", func() (bool, string) {
		sp, err := st.SpoolState()
		return err == nil && sp.Batches == 0, fmt.Sprintf("%+v %v", sp, err)
	})
	cancel()
	<-sent

	admin.mu.Lock()
	defer admin.mu.Unlock()
	first := sp.Dropped + 1
	if len(admin.order) != sp.Batches {
		t.Fatalf("admin node stored %v, want %d batches", admin.order, sp.Batches)
	}
	for i, seq := range admin.order {
		if seq != first+uint64(i) {
			t.Fatalf("stored in the order %v, want from %d on", admin.order, first)
		}
		b := admin.stored[seq]
		if b.Dropped != sp.Dropped || requestsOf(b) != seq*seq-(seq-1)*(seq-1) {
			t.Errorf("batch %d: dropped %d, %d requests", seq, b.Dropped, requestsOf(b))
		}
	}
	want := `
# HELP gatehouse_node_traffic_dropped_batches_total Traffic batches dropped since the node joined: the spool was past its bounds, or the admin node refused them.
# TYPE gatehouse_node_traffic_dropped_batches_total counter
gatehouse_node_traffic_dropped_batches_total ` + strconv.FormatUint(sp.Dropped, 10) + `
# HELP gatehouse_node_traffic_spool_batches Traffic batches spooled, waiting for the admin node's acknowledgement.
# TYPE gatehouse_node_traffic_spool_batches gauge
gatehouse_node_traffic_spool_batches 0
# HELP gatehouse_node_traffic_spool_bytes Size of the spooled traffic batches, in bytes.
# TYPE gatehouse_node_traffic_spool_bytes gauge
gatehouse_node_traffic_spool_bytes 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metrics.NodeTrafficDropped, metrics.NodeTrafficSpoolBatches, metrics.NodeTrafficSpoolBytes); err != nil {
		t.Error(err)
	}
}

// The sender over the real client and TLS: retries until the admin node
// answers, in order, and drops a batch the admin node refuses.
func TestSendTrafficOverTLS(t *testing.T) {
	var (
		mu       sync.Mutex
		failures = 2
		got      []uint64
	)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != apitypes.AgentPrefix+"/traffic" {
			http.NotFound(w, r)
			return
		}
		var b traffic.Batch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, b.Seq)
		switch {
		case failures > 0:
			failures--
			http.Error(w, "starting", http.StatusServiceUnavailable)
		case b.Series[0].Instance == "poison":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(apitypes.ErrorBody{Error: apitypes.Error{Code: "invalid_batch", Message: "no"}})
		default:
			json.NewEncoder(w).Encode(traffic.Ack{Seq: b.Seq})
		}
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	admin, err := client.New(client.Config{Address: srv.URL, CACertPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	c, _ := newTestCollector(t, st, admin, state.SpoolLimits{}, func() []trafficTarget { return nil })
	for i, instance := range []string{"web-1", "poison", "web-1"} {
		if err := c.observe(trafficTarget{name: instance, group: "web"}, snapshot("web", instance, "a", uint64(i+1))); err != nil {
			t.Fatal(err)
		}
		c.cut()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.send(ctx) }()
	waitfor.Cond(t, 20*time.Second, "the spool emptied", func() (bool, string) {
		sp, err := st.SpoolState()
		return err == nil && sp.Batches == 0, fmt.Sprintf("%+v %v", sp, err)
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{1, 1, 1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("admin node got seqs %v, want %v", got, want)
	}
	if sp, _ := st.SpoolState(); sp.Dropped != 1 {
		t.Errorf("refused batch not counted dropped: %+v", sp)
	}
}

type fakeSupervisor struct{ states []supervisor.State }

func (f *fakeSupervisor) Reconcile(context.Context, []supervisor.Spec) error { return nil }
func (f *fakeSupervisor) Restart(context.Context, string) error              { return nil }
func (f *fakeSupervisor) States() []supervisor.State                         { return f.states }

// The local API takes a stopping gateway's last counts with its secret,
// even once the instance is no longer desired.
func TestPushTrafficToLocalAPI(t *testing.T) {
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	if err := st.PutInstances(1, []apitypes.AgentInstance{{Name: "web-1", Group: "web", StatusListen: "127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	secret, err := st.Secret("web-1")
	if err != nil {
		t.Fatal(err)
	}
	sup := &fakeSupervisor{}
	a := &agent{log: hclog.NewNullLogger(), state: st, sup: sup}
	a.traffic, _ = newTestCollector(t, st, newFakeAdmin(), state.SpoolLimits{}, a.trafficTargets)
	srv := httptest.NewServer(a.localHandler(prometheus.NewRegistry()))
	defer srv.Close()

	push := func(secret string, requests uint64) error {
		c, err := localapi.New(srv.URL, "web-1", secret, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.PushTraffic(context.Background(), *snapshot("web", "web-1", "a", requests))
	}
	var se *localapi.StatusError
	if err := push("wrong", 1); !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Fatalf("push with a wrong secret: %v", err)
	}
	if err := push(secret, 3); err != nil {
		t.Fatal(err)
	}
	// Removed, and still stopping: its last push is taken.
	if err := st.PutInstances(2, nil); err != nil {
		t.Fatal(err)
	}
	sup.states = []supervisor.State{{Name: "web-1", Group: "web", Process: supervisor.StateStopping, PID: 42}}
	if err := push(secret, 5); err != nil {
		t.Fatal(err)
	}
	a.traffic.collect(context.Background())
	batches := spooled(t, st)
	if len(batches) != 1 || requestsOf(batches[0]) != 5 || batches[0].Series[0].Instance != "web-1" {
		t.Fatalf("batches %+v", batches)
	}
	// Gone: its reading is forgotten, and a push without a known group is
	// refused.
	sup.states = nil
	a.traffic.collect(context.Background())
	if err := push(secret, 6); !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("push of a gone instance: %v", err)
	}
}

func TestStatusTrafficURL(t *testing.T) {
	for listen, want := range map[string]string{
		":8085":          "http://127.0.0.1:8085/traffic",
		"0.0.0.0:8085":   "http://127.0.0.1:8085/traffic",
		"[::]:8085":      "http://[::1]:8085/traffic",
		"10.0.0.5:8086":  "http://10.0.0.5:8086/traffic",
		"localhost:8085": "http://localhost:8085/traffic",
	} {
		if got, err := statusTrafficURL(listen); err != nil || got != want {
			t.Errorf("statusTrafficURL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	if _, err := statusTrafficURL("8085"); err == nil {
		t.Error("an address without a port was accepted")
	}
}

// A collection of more series than a batch holds is spooled as several
// batches in a row, of the same interval.
func TestLargeCollectionSplits(t *testing.T) {
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	c, _ := newTestCollector(t, st, newFakeAdmin(), state.SpoolLimits{}, func() []trafficTarget { return nil })
	snap := &traffic.Snapshot{Group: "web", Instance: "web-1", Boot: "a"}
	for i := range maxBatchSeries + 500 {
		snap.Series = append(snap.Series, traffic.Series{Key: traffic.Key{Service: "s", Route: "r" + strconv.Itoa(i), Class: traffic.Class2xx},
			Counts: traffic.Counts{Requests: 1}})
	}
	if err := c.observe(trafficTarget{name: "web-1", group: "web"}, snap); err != nil {
		t.Fatal(err)
	}
	c.cut()
	batches := spooled(t, st)
	if len(batches) != 2 || batches[0].Seq != 1 || batches[1].Seq != 2 || !batches[0].End.Equal(batches[1].End) ||
		len(batches[0].Series) != maxBatchSeries || requestsOf(batches[0])+requestsOf(batches[1]) != maxBatchSeries+500 {
		t.Fatalf("%d batches", len(batches))
	}
}

// TestCollectOverlappingProcesses: during a restart without downtime the
// old and the new process of an instance serve side by side, and their
// readings (and the old one's last push) interleave: each process's
// requests are counted once.
func TestCollectOverlappingProcesses(t *testing.T) {
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	target := trafficTarget{name: "web-1", group: "web"}
	c, _ := newTestCollector(t, st, newFakeAdmin(), state.SpoolLimits{}, func() []trafficTarget { return nil })
	ctx := context.Background()
	for _, r := range []struct {
		boot string
		n    uint64
	}{
		{"old", 10}, // before the restart
		{"new", 2},  // the new process answers a reading
		{"old", 13}, // the old one still serves, and answers the next
		{"new", 5},
		{"old", 12}, // a late reading of the old one: already counted
	} {
		if err := c.observe(target, snapshot("web", "web-1", r.boot, r.n)); err != nil {
			t.Fatal(err)
		}
	}
	// The old one's last push as it exits.
	if err := c.push("web-1", snapshot("web", "web-1", "old", 14)); err != nil {
		t.Fatal(err)
	}
	if err := c.observe(target, snapshot("web", "web-1", "new", 6)); err != nil {
		t.Fatal(err)
	}
	c.collect(ctx)
	var total uint64
	for _, b := range spooled(t, st) {
		total += requestsOf(b)
	}
	if want := uint64(14 + 6); total != want {
		t.Errorf("%d requests counted, want %d (14 by the old process, 6 by the new)", total, want)
	}
}
