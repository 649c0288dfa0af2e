package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/store"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/metrics/traffic"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

const (
	testInstance = "web-1"
	testGroup    = "web"
	testSecret   = "s3cret"
)

// fakeNodeManager serves the two routes of the local API a gateway uses,
// with blocking queries, and keeps the reports. The real server is in
// nodemanager; this one is just enough to drive a gateway.
type fakeNodeManager struct {
	srv     *httptest.Server
	failing atomic.Bool // answer 503 to everything

	mu      sync.Mutex
	dep     *deploy.Deployment
	changed chan struct{} // closed on every change
	// moved is added to the index: the real node manager's index moves
	// for other groups and instances too, with the same deployment.
	moved    uint64
	answered int // answers that carried a deployment
	reports  []localapi.Report
	pushes   []traffic.Snapshot
}

func startFakeNodeManager(t *testing.T) *fakeNodeManager {
	f := &fakeNodeManager{changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/deployment", f.deployment)
	mux.HandleFunc("PUT /v1/instances/{name}/report", f.report)
	mux.HandleFunc("PUT /v1/instances/{name}/traffic", f.traffic)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNodeManager) authorized(w http.ResponseWriter, r *http.Request, instance string) bool {
	switch {
	case f.failing.Load():
		http.Error(w, "node manager unavailable", http.StatusServiceUnavailable)
	case r.Header.Get("Authorization") != "Bearer "+testSecret || instance != testInstance:
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	default:
		return true
	}
	return false
}

func (f *fakeNodeManager) deployment(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !f.authorized(w, r, q.Get("instance")) {
		return
	}
	index, err1 := strconv.ParseUint(q.Get("index"), 10, 64)
	wait, err2 := time.ParseDuration(q.Get("wait"))
	if err1 != nil || err2 != nil {
		http.Error(w, "bad index or wait", http.StatusBadRequest)
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		ans := localapi.DeploymentAnswer{Deployment: f.dep}
		if f.dep != nil {
			ans.Index = f.dep.Number + f.moved
		}
		changed := f.changed
		if ans.Index != index && f.dep != nil {
			f.answered++
		}
		f.mu.Unlock()
		if ans.Index != index {
			json.NewEncoder(w).Encode(ans)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			json.NewEncoder(w).Encode(ans)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeNodeManager) report(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r, r.PathValue("name")) {
		return
	}
	var rep localapi.Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reports = append(f.reports, rep)
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeNodeManager) traffic(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r, r.PathValue("name")) {
		return
	}
	var snap traffic.Snapshot
	if err := json.NewDecoder(r.Body).Decode(&snap); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.pushes = append(f.pushes, snap)
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeNodeManager) publish(d *deploy.Deployment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dep = d
	close(f.changed)
	f.changed = make(chan struct{})
}

// moveIndex answers the same deployment again under a new index.
func (f *fakeNodeManager) moveIndex() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moved += 1000
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeNodeManager) answers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answered
}

// waitReport waits for a report for which ok holds.
func (f *fakeNodeManager) waitReport(t *testing.T, what string, ok func(localapi.Report) bool) localapi.Report {
	t.Helper()
	var last localapi.Report
	waitfor.Cond(t, 10*time.Second, "a report "+what, func() (bool, string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if n := len(f.reports); n > 0 {
			last = f.reports[n-1]
			return ok(last), fmt.Sprintf("reports: %+v", f.reports)
		}
		return false, "no report"
	})
	return last
}

// testConfig is a valid configuration whose route path names n, so that
// every number has its own checksum.
func testConfig(n uint64) *deploy.Config {
	return &deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "up", Targets: []deploy.Target{{Address: "127.0.0.1:9"}}}},
		Services: []deploy.Service{{Name: "svc", Upstream: "up", Routes: []deploy.Route{
			{Name: "r", Paths: []string{fmt.Sprintf("/v%d", n)}},
		}}},
	}
}

func signed(t testing.TB, priv ed25519.PrivateKey, group string, n uint64) *deploy.Deployment {
	t.Helper()
	d, err := deploy.NewDeployment("acme", group, n, testConfig(n), "alice", "", time.Now(), catalog.Checker{})
	if err != nil {
		t.Fatal(err)
	}
	d.Sign(priv)
	return d
}

// startRemoteGateway makes a gateway following f and runs its watch and
// report loops (no listeners: the rules are what is tested here).
func startRemoteGateway(t *testing.T, f *fakeNodeManager, pub ed25519.PublicKey, dataDir string) (*Gateway, func()) {
	t.Helper()
	g, err := New(Options{
		Instance: testInstance, Group: testGroup, DataDir: dataDir,
		NodeManager: f.srv.URL, DomainKey: pub, InstanceSecret: testSecret,
		WatchWait: 2 * time.Second, ReportInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); g.followNodeManager(ctx) }()
	go func() { defer wg.Done(); g.reportLoop(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			g.registry.Close()
			g.store.Close()
		})
	}
	t.Cleanup(stop)
	return g, stop
}

func TestDeploymentRules(t *testing.T) {
	pub, priv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	f := startFakeNodeManager(t)
	g, _ := startRemoteGateway(t, f, pub, t.TempDir())

	tests := []struct {
		name string
		make func() *deploy.Deployment
		// want is nil when the deployment must apply, else the error it is
		// refused with.
		want error
	}{
		{"good", func() *deploy.Deployment { return signed(t, priv, testGroup, 5) }, nil},
		{"wrong key", func() *deploy.Deployment { return signed(t, otherPriv, testGroup, 6) }, deploy.ErrBadSignature},
		{"other group", func() *deploy.Deployment { return signed(t, priv, "api", 7) }, errOtherGroup},
		{"lower number", func() *deploy.Deployment { return signed(t, priv, testGroup, 4) }, errOldNumber},
		{"tampered config", func() *deploy.Deployment {
			d := signed(t, priv, testGroup, 8)
			d.Config = json.RawMessage(strings.Replace(string(d.Config), "/v8", "/evil", 1))
			return d
		}, deploy.ErrChecksumMismatch},
		{"tampered config and checksum", func() *deploy.Deployment {
			d := signed(t, priv, testGroup, 9)
			d.Config = json.RawMessage(strings.Replace(string(d.Config), "/v9", "/evil", 1))
			d.Checksum = sha256Of(d.Config)
			return d
		}, deploy.ErrBadSignature},
		{"invalid config, signed", func() *deploy.Deployment {
			// NewDeployment refuses an invalid configuration, so this one is
			// built by hand, as a buggy or compromised signer could.
			cfg := json.RawMessage(`{"services":[{"name":"svc","upstream":"missing","routes":[{"name":"r","paths":["/x"]}]}]}`)
			d := &deploy.Deployment{Domain: "acme", Group: testGroup, Number: 10, Checksum: sha256Of(cfg),
				Config: cfg, Author: "mallory", CreatedAt: time.Now().UTC()}
			d.Sign(priv)
			return d
		}, deploy.ErrInvalidConfig},
		{"invalid policy config, signed", func() *deploy.Deployment {
			// deploy knows no policy kind by itself: the gateway must check
			// the policies with the catalog before it applies anything.
			cfg := json.RawMessage(`{"services":[{"name":"svc","routes":[{"name":"r","paths":["/x"],"policies":[{"config":{"limits":[{"requests":5,"window":"fortnight"}]},"name":"rate-limit"}]}],"upstream":"up"}],"upstreams":[{"name":"up","targets":[{"address":"127.0.0.1:9"}]}]}`)
			d := &deploy.Deployment{Domain: "acme", Group: testGroup, Number: 10, Checksum: sha256Of(cfg),
				Config: cfg, Author: "mallory", CreatedAt: time.Now().UTC()}
			d.Sign(priv)
			return d
		}, deploy.ErrInvalidConfig},
		{"number 0", func() *deploy.Deployment { return signed(t, priv, testGroup, 0) }, errNumberedZero},
		{"good after refusals", func() *deploy.Deployment { return signed(t, priv, testGroup, 11) }, nil},
	}
	var good *deploy.Deployment
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.make()
			served := g.deployment.Load()
			// The rule alone, then the gateway applying it as received.
			if _, err := checkDeployment(d, pub, testGroup, served); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("checkDeployment = %v, want %v", err, tt.want)
			}
			f.publish(d)
			if tt.want == nil {
				good = d
				f.waitReport(t, fmt.Sprintf("of deployment %d applied", d.Number), func(r localapi.Report) bool {
					return r.AppliedDeployment == d.Number && r.AppliedChecksum == d.Checksum && r.Ready && r.LastError == ""
				})
			} else {
				prefix := fmt.Sprintf("deployment %d refused: ", d.Number)
				rep := f.waitReport(t, "of the refusal", func(r localapi.Report) bool {
					return strings.HasPrefix(r.LastError, prefix)
				})
				if !strings.Contains(rep.LastError, tt.want.Error()) {
					t.Errorf("report error %q does not say %q", rep.LastError, tt.want)
				}
				// The last good deployment keeps serving.
				if good == nil || rep.AppliedDeployment != good.Number || rep.AppliedChecksum != good.Checksum || !rep.Ready {
					t.Errorf("after a refusal the report is %+v, want deployment %d still served", rep, good.Number)
				}
				st := g.Status().(Report)
				if lr := st.Deployment.LastRefused; lr == nil || lr.Number != d.Number || !strings.Contains(lr.Reason, tt.want.Error()) {
					t.Errorf("/status last refused = %+v", lr)
				}
			}
			if cur := g.proxy.Current(); cur == nil || cur.Checksum != good.Checksum {
				t.Errorf("serving %v, want %s", cur, good.Checksum)
			}
		})
	}
	st := g.Status().(Report)
	if st.Source != "node-manager "+f.srv.URL || st.Deployment.Applied != 11 || st.LastError != nil {
		t.Errorf("/status = source %q, deployment %+v, last error %+v", st.Source, st.Deployment, st.LastError)
	}
}

func sha256Of(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// A restarted gateway serves its stored deployment, with its number, while
// the node manager is down, and refuses older deployments once it is back.
// A configuration a file left in the store is not served.
func TestRestartFromStoredDeployment(t *testing.T) {
	pub, priv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := startFakeNodeManager(t)
	_, stop := startRemoteGateway(t, f, pub, dir)
	d3 := signed(t, priv, testGroup, 3)
	f.publish(d3)
	f.waitReport(t, "of deployment 3", func(r localapi.Report) bool { return r.AppliedDeployment == 3 })
	stop()

	// A file's configuration, newer in the store than the deployment.
	s, err := store.Open(filepath.Join(dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	canonical, _ := testConfig(99).Canonical()
	if _, err := s.Save(store.Record{Checksum: sha256Of(canonical), AppliedAt: time.Now(), Origin: "file:x", Config: canonical}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	f.failing.Store(true)
	g, _ := startRemoteGateway(t, f, pub, dir)
	if cur := g.proxy.Current(); cur == nil || cur.Checksum != d3.Checksum || g.deployment.Load() != 3 {
		t.Fatalf("restarted on %v, deployment %d; want deployment 3 (%s)", cur, g.deployment.Load(), d3.Checksum)
	}
	waitfor.True(t, 10*time.Second, "the node manager's failure in /status", func() bool {
		_, contact := g.remote.status()
		return contact.LastError != ""
	})

	f.failing.Store(false)
	f.publish(signed(t, priv, testGroup, 2))
	rep := f.waitReport(t, "of the refusal of deployment 2", func(r localapi.Report) bool { return strings.HasPrefix(r.LastError, "deployment 2 refused") })
	if rep.AppliedDeployment != 3 || !strings.Contains(rep.LastError, errOldNumber.Error()) {
		t.Fatalf("report %+v, want deployment 3 kept and 2 refused as older", rep)
	}
	d4 := signed(t, priv, testGroup, 4)
	f.publish(d4)
	f.waitReport(t, "of deployment 4", func(r localapi.Report) bool { return r.AppliedDeployment == 4 && r.LastError == "" })
	if _, contact := g.remote.status(); contact.LastError != "" || contact.LastContact.IsZero() {
		t.Errorf("node manager contact after recovery: %+v", contact)
	}
}

func TestNodeManagerOptions(t *testing.T) {
	pub, _, _ := deploy.GenerateSigningKey()
	base := Options{Instance: "i", Group: "g", NodeManager: "http://127.0.0.1:8091", DomainKey: pub}
	tests := map[string]func(o *Options){
		"file too":       func(o *Options) { o.ConfigPath = "gw.yaml" },
		"no key":         func(o *Options) { o.DomainKey = nil },
		"no group":       func(o *Options) { o.Group = "" },
		"bad url":        func(o *Options) { o.NodeManager = "127.0.0.1:8091" },
		"no instance":    func(o *Options) { o.Instance = "" },
		"short key":      func(o *Options) { o.DomainKey = pub[:16] },
		"unix-ish url":   func(o *Options) { o.NodeManager = "unix:///run/nm.sock" },
		"url with space": func(o *Options) { o.NodeManager = "http://a b" },
	}
	for name, change := range tests {
		o := base
		change(&o)
		if g, err := New(o); err == nil {
			g.store.Close()
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

// TestSameDeploymentAgainIsNotApplied: the node manager's index moves for
// changes of other groups and instances, answering the deployment the
// gateway serves again; the gateway must not apply it again (each time it
// counted a reload, logged "deployment applied" and told its whole group).
func TestSameDeploymentAgainIsNotApplied(t *testing.T) {
	pub, priv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	f := startFakeNodeManager(t)
	g, _ := startRemoteGateway(t, f, pub, t.TempDir())
	f.publish(signed(t, priv, testGroup, 1))
	f.waitReport(t, "of deployment 1 applied", func(r localapi.Report) bool { return r.AppliedDeployment == 1 })
	before := reloads(t, g)
	answered := f.answers()
	for range 3 {
		f.moveIndex()
	}
	waitfor.True(t, 5*time.Second, "the gateway to get the same deployment again", func() bool { return f.answers() > answered })
	waitfor.Holds(t, 300*time.Millisecond, "no reload for the same deployment", func() (bool, string) {
		n := reloads(t, g)
		return n == before, fmt.Sprintf("%v reloads, %v before", n, before)
	})
}

// reloads is the gateway's count of configurations applied.
func reloads(t *testing.T, g *Gateway) float64 {
	t.Helper()
	mfs, err := g.gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == metrics.GatewayReloads {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
