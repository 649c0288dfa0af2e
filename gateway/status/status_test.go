package status

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

type fakeReporter struct{ ready bool }

func (f fakeReporter) Ready() bool { return f.ready }
func (f fakeReporter) Status() any { return map[string]string{"group": "g1"} }
func (f fakeReporter) Traffic() traffic.Snapshot {
	return traffic.Snapshot{Group: "g1", Instance: "i1", Boot: "b1", Series: []traffic.Series{
		{Key: traffic.Key{Service: "s", Route: "r", Class: traffic.Class2xx}, Counts: traffic.Counts{Requests: 3}},
	}}
}

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "probe_total", Help: "h"})
	reg.MustRegister(c)
	c.Inc()
	tests := []struct {
		ready    bool
		path     string
		code     int
		contains string
	}{
		{false, "/healthz", 200, `"ok"`},
		{false, "/readyz", 503, `"not ready"`},
		{true, "/readyz", 200, `"ready"`},
		{true, "/status", 200, `"group": "g1"`},
		{true, "/metrics", 200, "probe_total 1"},
		{false, "/traffic", 200, `"boot":"b1"`},
		{true, "/nothing", 404, ""},
		// Profiles are on a loopback listener of their own (Profiling).
		{true, "/debug/pprof/", 404, ""},
		{true, "/debug/pprof/profile?seconds=1", 404, ""},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(Handler(fakeReporter{tt.ready}, reg))
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.contains) {
			t.Errorf("GET %s (ready=%v) = %d %q, want %d containing %q", tt.path, tt.ready, resp.StatusCode, body, tt.code, tt.contains)
		}
	}
}
