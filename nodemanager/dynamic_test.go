package nodemanager

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/nodemanager/supervisor"
)

// controlRecorder is a gateway's control endpoint that records what it is
// given, and fails while failing is set.
type controlRecorder struct {
	mu      sync.Mutex
	got     []localapi.Settings
	auth    []string
	failing bool
}

func (c *controlRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodPut || r.URL.Path != localapi.GatewayPathSettings {
		http.NotFound(w, r)
		return
	}
	if c.failing {
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	var s localapi.Settings
	if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.got = append(c.got, s)
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	w.WriteHeader(http.StatusNoContent)
}

func (c *controlRecorder) deliveries() []localapi.Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]localapi.Settings(nil), c.got...)
}

// Settings go to a running gateway when they change and to each new
// process that should not run as started, with the instance's secret;
// a failed delivery is made again next round.
func TestDeliverSettings(t *testing.T) {
	gw := &controlRecorder{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	listen := strings.TrimPrefix(srv.URL, "http://")
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	secret, err := st.Secret("web-1")
	if err != nil {
		t.Fatal(err)
	}
	desire := func(s *apitypes.AgentGatewaySettings) {
		t.Helper()
		if err := st.PutInstances(1, []apitypes.AgentInstance{{Name: "web-1", Group: "web", StatusListen: listen, Settings: s}}); err != nil {
			t.Fatal(err)
		}
	}
	sup := &fakeSupervisor{states: []supervisor.State{{Name: "web-1", Process: supervisor.StateRunning, PID: 10}}}
	a := &agent{log: hclog.NewNullLogger(), state: st, sup: sup}
	client := &http.Client{}
	given := map[string]delivered{}
	round := func() { a.deliverSettingsOnce(context.Background(), client, given) }

	// As started, nothing is sent to a process this node manager started.
	desire(nil)
	round()
	if n := len(gw.deliveries()); n != 0 {
		t.Fatalf("%d deliveries of no settings", n)
	}
	debug := &apitypes.AgentGatewaySettings{LogLevel: "debug", AccessLogPercent: 10}
	desire(debug)
	round()
	round()
	if got := gw.deliveries(); len(got) != 1 || got[0] != localapi.Settings(*debug) || gw.auth[0] != "Bearer "+secret {
		t.Fatalf("deliveries %+v with %q", got, gw.auth)
	}
	// A new process gets them again.
	sup.states[0].PID = 11
	round()
	if got := gw.deliveries(); len(got) != 2 || got[1] != localapi.Settings(*debug) {
		t.Fatalf("to the new process: %+v", got)
	}
	// Cleared: the running process is told.
	desire(nil)
	round()
	if got := gw.deliveries(); len(got) != 3 || got[2] != (localapi.Settings{}) {
		t.Fatalf("cleared: %+v", got)
	}
	// An adopted process may run anything: it is told, even none.
	sup.states[0].PID, sup.states[0].Adopted = 12, true
	round()
	if got := gw.deliveries(); len(got) != 4 || got[3] != (localapi.Settings{}) {
		t.Fatalf("adopted: %+v", got)
	}
	// A failed delivery is made again.
	gw.mu.Lock()
	gw.failing = true
	gw.mu.Unlock()
	desire(debug)
	round()
	gw.mu.Lock()
	gw.failing = false
	gw.mu.Unlock()
	round()
	if got := gw.deliveries(); len(got) != 5 || got[4] != localapi.Settings(*debug) {
		t.Fatalf("after a failure: %+v", got)
	}
	// A process not running is left alone.
	sup.states[0].Process, sup.states[0].PID = supervisor.StateBackoff, 0
	desire(&apitypes.AgentGatewaySettings{LogLevel: "warn"})
	round()
	if n := len(gw.deliveries()); n != 5 {
		t.Errorf("%d deliveries, a process in backoff was given settings", n)
	}
}
