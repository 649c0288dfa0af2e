package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

// relayNodeManager stands for a node manager's local API: the two routes a
// gateway calls, with blocking queries, serving whatever deployment the
// test publishes and keeping the gateway's last report. The real server is
// the node manager's; this one only drives a real gateway.
type relayNodeManager struct {
	srv    *httptest.Server
	secret string
	stop   chan struct{} // closed to end blocking queries before Close

	mu      sync.Mutex
	dep     *deploy.Deployment
	changed chan struct{}
	last    *localapi.Report
}

func startRelayNodeManager(t *testing.T, secret string) *relayNodeManager {
	nm := &relayNodeManager{secret: secret, stop: make(chan struct{}), changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/deployment", nm.deployment)
	mux.HandleFunc("PUT /v1/instances/{name}/report", nm.report)
	nm.srv = httptest.NewServer(mux)
	t.Cleanup(nm.close)
	return nm
}

func (nm *relayNodeManager) close() {
	select {
	case <-nm.stop:
	default:
		close(nm.stop)
	}
	nm.srv.Close()
}

func (nm *relayNodeManager) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(localapi.HeaderAuthorization) != localapi.BearerPrefix+nm.secret {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	return true
}

func (nm *relayNodeManager) deployment(w http.ResponseWriter, r *http.Request) {
	if !nm.authorized(w, r) {
		return
	}
	index, err := strconv.ParseUint(r.URL.Query().Get(localapi.QueryIndex), 10, 64)
	if err != nil {
		http.Error(w, "bad index", http.StatusBadRequest)
		return
	}
	wait, err := time.ParseDuration(r.URL.Query().Get(localapi.QueryWait))
	if err != nil {
		http.Error(w, "bad wait", http.StatusBadRequest)
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		nm.mu.Lock()
		ans := localapi.DeploymentAnswer{Deployment: nm.dep}
		if nm.dep != nil {
			ans.Index = nm.dep.Number
		}
		changed := nm.changed
		nm.mu.Unlock()
		if ans.Index != index {
			json.NewEncoder(w).Encode(ans)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			json.NewEncoder(w).Encode(ans)
			return
		case <-nm.stop:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (nm *relayNodeManager) report(w http.ResponseWriter, r *http.Request) {
	if !nm.authorized(w, r) {
		return
	}
	var rep localapi.Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	nm.mu.Lock()
	nm.last = &rep
	nm.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (nm *relayNodeManager) publish(d *deploy.Deployment) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.dep = d
	close(nm.changed)
	nm.changed = make(chan struct{})
}

func (nm *relayNodeManager) lastReport() (localapi.Report, bool) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	if nm.last == nil {
		return localapi.Report{}, false
	}
	return *nm.last, true
}

// relayStatus is the part of /status about the node manager source.
type relayStatus struct {
	Ready         bool   `json:"ready"`
	Source        string `json:"source"`
	Configuration *struct {
		Checksum string `json:"checksum"`
		Origin   string `json:"origin"`
	} `json:"configuration"`
	Deployment *struct {
		Applied     uint64 `json:"applied"`
		LastRefused *struct {
			Number uint64 `json:"number"`
			Reason string `json:"reason"`
		} `json:"last_refused"`
	} `json:"deployment"`
}

func (p *proc) relayStatus(t *testing.T) relayStatus {
	t.Helper()
	resp, err := http.Get("http://" + p.status + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s relayStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// relayDeployment is deployment n of group "web": /items/* and /v/<n> to
// the upstream target addr.
func relayDeployment(t *testing.T, n uint64, addr string) *deploy.Deployment {
	t.Helper()
	cfg := deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "up", Targets: []deploy.Target{{Address: addr}}}},
		Services: []deploy.Service{{Name: "svc", Upstream: "up", Routes: []deploy.Route{
			{Name: "items", Paths: []string{"/items/*"}},
			{Name: "version", Paths: []string{fmt.Sprintf("/v/%d", n)}},
		}}},
	}
	d, err := deploy.NewDeployment("acme", "web", n, &cfg, "e2e", fmt.Sprintf("deployment %d", n), time.Now(), catalog.Checker{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A gateway under a node manager follows its signed deployments without
// failing a request, refuses a badly signed one and says so, and serves
// its last deployment from its store when restarted with the node manager
// gone.
func TestGatewayFollowsNodeManager(t *testing.T) {
	pub, priv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	const secret = "e2e-instance-secret"
	// The node manager hands the secret over in the environment; the
	// gateway process inherits the test's.
	t.Setenv(localapi.EnvInstanceSecret, secret)
	a := startUpstream(t, "a", nil)
	b := startUpstream(t, "b", nil)
	nm := startRelayNodeManager(t, secret)
	d1 := relayDeployment(t, 1, a.addr)
	d1.Sign(priv)
	nm.publish(d1)

	data := filepath.Join(t.TempDir(), "gw")
	opts := gatewayOpts{dataDir: data, extra: []string{
		"--node-manager", nm.srv.URL, "--domain-key", deploy.EncodePublicKey(pub),
		"--group", "web", "--instance", "web-1",
	}}
	gw := startGateway(t, opts)
	gw.waitReady(t)
	base := "http://" + gw.listen
	if code, _, hdr := get(t, http.DefaultClient, base+"/items/1"); code != 200 || hdr.Get("X-Upstream") != "a" {
		t.Fatalf("deployment 1: /items/1 = %d from %q, want 200 from a", code, hdr.Get("X-Upstream"))
	}
	if s := gw.relayStatus(t); s.Source != "node-manager "+nm.srv.URL || s.Deployment == nil || s.Deployment.Applied != 1 {
		t.Fatalf("/status = %+v, want deployment 1 from node-manager %s", s, nm.srv.URL)
	}

	// Continuous load across deployment 2 and the refusal of 3.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for ctx.Err() == nil {
				resp, err := client.Get(base + "/items/1")
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, resp.Status)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitfor.Cond(t, 10*time.Second, "traffic flowing before deployment 2", func() (bool, string) {
		return ok.Load() >= 100, fmt.Sprintf("%d answered, %d failed", ok.Load(), failed.Load())
	})

	d2 := relayDeployment(t, 2, b.addr)
	d2.Sign(priv)
	nm.publish(d2)
	gw.waitFor(t, 10*time.Second, "deployment 2", func() bool {
		s := gw.relayStatus(t)
		return s.Deployment != nil && s.Deployment.Applied == 2 && s.Configuration.Checksum == d2.Checksum
	})
	if code, _, hdr := get(t, http.DefaultClient, base+"/items/1"); code != 200 || hdr.Get("X-Upstream") != "b" {
		t.Fatalf("deployment 2: /items/1 = %d from %q, want 200 from b", code, hdr.Get("X-Upstream"))
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/v/2"); code != 200 {
		t.Fatalf("deployment 2: /v/2 = %d", code)
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/v/1"); code != 404 {
		t.Fatalf("deployment 2: /v/1 = %d, want 404 (deployment 1's route)", code)
	}

	d3 := relayDeployment(t, 3, a.addr)
	d3.Sign(otherPriv)
	nm.publish(d3)
	gw.waitFor(t, 10*time.Second, "the refusal of deployment 3 in the report", func() bool {
		r, ok := nm.lastReport()
		return ok && strings.HasPrefix(r.LastError, "deployment 3 refused")
	})
	r, _ := nm.lastReport()
	if !strings.Contains(r.LastError, deploy.ErrBadSignature.Error()) || r.AppliedDeployment != 2 || r.AppliedChecksum != d2.Checksum || !r.Ready {
		t.Fatalf("report after deployment 3 = %+v, want deployment 2 served and a bad signature", r)
	}
	s := gw.relayStatus(t)
	if s.Deployment.Applied != 2 || s.Deployment.LastRefused == nil || s.Deployment.LastRefused.Number != 3 ||
		!strings.Contains(s.Deployment.LastRefused.Reason, deploy.ErrBadSignature.Error()) {
		t.Fatalf("/status after deployment 3 = %+v", s.Deployment)
	}
	if code, _, hdr := get(t, http.DefaultClient, base+"/items/1"); code != 200 || hdr.Get("X-Upstream") != "b" {
		t.Fatalf("after refusing 3: /items/1 = %d from %q, want deployment 2 (b)", code, hdr.Get("X-Upstream"))
	}

	cancel()
	wg.Wait()
	t.Logf("%d requests across deployments 2 and 3, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed; first: %v", failed.Load(), firstFailure.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests ran: the load did not overlap the deployments", ok.Load())
	}

	// The node manager goes away and the gateway restarts: it serves
	// deployment 2 from its store.
	nm.close()
	gw.signal(syscall.SIGTERM)
	if code := gw.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	gw = startGateway(t, opts)
	gw.waitReady(t)
	s = gw.relayStatus(t)
	if s.Deployment == nil || s.Deployment.Applied != 2 || s.Configuration.Checksum != d2.Checksum ||
		!strings.HasPrefix(s.Configuration.Origin, "store:") {
		t.Fatalf("restarted gateway: %+v %+v, want deployment 2 from the store", s.Deployment, s.Configuration)
	}
	if code, _, hdr := get(t, http.DefaultClient, "http://"+gw.listen+"/items/1"); code != 200 || hdr.Get("X-Upstream") != "b" {
		t.Fatalf("restarted gateway: /items/1 = %d from %q, want 200 from b", code, hdr.Get("X-Upstream"))
	}
}

// The node manager mode's flags are checked before anything starts.
func TestGatewayNodeManagerFlags(t *testing.T) {
	pub, _, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	key := deploy.EncodePublicKey(pub)
	t.Setenv(localapi.EnvInstanceSecret, "s")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--config", "gw.yaml", "--node-manager", localapi.DefaultURL, "--domain-key", key, "--group", "g", "--instance", "i"}, "--config and --node-manager are mutually exclusive"},
		{[]string{"--node-manager", localapi.DefaultURL, "--domain-key", key, "--instance", "i"}, "--group is required"},
		{[]string{"--node-manager", localapi.DefaultURL, "--domain-key", key, "--group", "g"}, "--instance is required"},
		{[]string{"--node-manager", localapi.DefaultURL, "--group", "g", "--instance", "i"}, "--domain-key is required"},
		{[]string{"--node-manager", localapi.DefaultURL, "--domain-key", "ed25519:AAAA", "--group", "g", "--instance", "i"}, "--domain-key: parse public key"},
		{[]string{"--domain-key", key}, "--domain-key is for --node-manager"},
	}
	for _, tt := range tests {
		p := start(t, append([]string{"gateway", "--status-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--tls-listen", ""}, tt.args...)...)
		if code := p.exit(t, 10*time.Second); code == 0 || !strings.Contains(p.out.String(), tt.want) {
			t.Errorf("gateway %s: exit %d, output %q; want an error saying %q", strings.Join(tt.args, " "), code, p.out.String(), tt.want)
		}
	}
	t.Setenv(localapi.EnvInstanceSecret, "")
	p := start(t, "gateway", "--node-manager", localapi.DefaultURL, "--domain-key", key, "--group", "g", "--instance", "i")
	if code := p.exit(t, 10*time.Second); code == 0 || !strings.Contains(p.out.String(), localapi.EnvInstanceSecret+" is not set") {
		t.Errorf("without a secret: exit %d, output %q", code, p.out.String())
	}
}
