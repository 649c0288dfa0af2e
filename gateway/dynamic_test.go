package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/gateway/proxy"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// lockedBuffer is a log output the timer's goroutine writes too.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count counts the lines holding s.
func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func dynamicGateway(t *testing.T) (*Gateway, *lockedBuffer) {
	t.Helper()
	out := &lockedBuffer{}
	g, err := New(Options{Instance: "i1", Group: "g1", InstanceSecret: "s3cret",
		Logger: hclog.New(&hclog.LoggerOptions{Name: "gateway", Output: out, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	return g, out
}

// The log level changes at once and returns to the starting one when
// unset; the access log logs exactly the sampled share of the exchanges.
func TestDynamicLogLevelAndAccessLog(t *testing.T) {
	g, out := dynamicGateway(t)
	if err := g.ApplySettings(localapi.Settings{LogLevel: "debug", AccessLogPercent: 10}); err != nil {
		t.Fatal(err)
	}
	if !g.logger.IsDebug() {
		t.Fatal("log level debug not in force")
	}
	for range 100 {
		g.observe(&proxy.Exchange{Method: []byte("GET"), Path: []byte("/x"), Status: 200, Route: "r"})
	}
	if n := out.count(" access: "); n != 10 {
		t.Errorf("%d access lines for 100 exchanges at 10%%, want 10", n)
	}
	if s := g.settings(); s == nil || s.LogLevel != "debug" || s.AccessLogPercent != 10 {
		t.Errorf("settings in force %+v", s)
	}
	if err := g.ApplySettings(localapi.Settings{}); err != nil {
		t.Fatal(err)
	}
	if g.logger.IsDebug() || !g.logger.IsInfo() || g.settings() != nil {
		t.Errorf("after clearing: debug %v, settings %+v", g.logger.IsDebug(), g.settings())
	}
	for _, bad := range []localapi.Settings{{LogLevel: "loud"}, {AccessLogPercent: 101}, {TraceRoute: "r"}, {TraceUntil: time.Now()}} {
		if err := g.ApplySettings(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A trace logs the exchanges of its route only, and stops by itself.
func TestDynamicTraceEnds(t *testing.T) {
	g, out := dynamicGateway(t)
	if err := g.ApplySettings(localapi.Settings{TraceRoute: "api/orders", TraceUntil: time.Now().Add(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	g.observe(&proxy.Exchange{Service: "api", Route: "orders", Status: 200})
	g.observe(&proxy.Exchange{Service: "other", Route: "orders", Status: 200})
	g.observe(&proxy.Exchange{Service: "api", Route: "users", Status: 200})
	if n := out.count(" trace: "); n != 1 {
		t.Errorf("%d trace lines, want 1 (api/orders only)", n)
	}
	waitfor.Cond(t, 10*time.Second, "the trace ended", func() (bool, string) {
		s := g.settings()
		return s == nil && out.count("request tracing ended") == 1, out.String()
	})
	g.observe(&proxy.Exchange{Service: "api", Route: "orders", Status: 200})
	if n := out.count(" trace: "); n != 1 {
		t.Errorf("%d trace lines after the end, want 1", n)
	}
	// A trace that ended before it came is not started.
	if err := g.ApplySettings(localapi.Settings{TraceRoute: "orders", TraceUntil: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if s := g.settings(); s != nil {
		t.Errorf("a past trace is in force: %+v", s)
	}
}

// The control endpoint wants the instance's secret and names bad fields.
func TestControlEndpoint(t *testing.T) {
	g, _ := dynamicGateway(t)
	srv := httptest.NewServer(g.statusHandler())
	t.Cleanup(srv.Close)
	put := func(auth, body string) int {
		req, _ := http.NewRequest("PUT", srv.URL+localapi.GatewayPathSettings, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		auth, body string
		want       int
	}{
		{"", `{"log_level":"debug"}`, http.StatusUnauthorized},
		{"Bearer wrong", `{"log_level":"debug"}`, http.StatusUnauthorized},
		{"Bearer s3cret", `{"log_level":"loud"}`, http.StatusBadRequest},
		{"Bearer s3cret", `{"log_levels":"debug"}`, http.StatusBadRequest},
		{"Bearer s3cret", `{"log_level":"debug"}`, http.StatusNoContent},
	} {
		if got := put(tc.auth, tc.body); got != tc.want {
			t.Errorf("PUT %s with %q: %d, want %d", tc.body, tc.auth, got, tc.want)
		}
	}
	if !g.logger.IsDebug() {
		t.Error("the accepted settings are not in force")
	}
	// Without an instance secret (standalone), there is no endpoint.
	alone, err := New(Options{Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(alone.statusHandler())
	t.Cleanup(srv2.Close)
	req, _ := http.NewRequest("PUT", srv2.URL+localapi.GatewayPathSettings, strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		t.Errorf("a standalone gateway accepted settings")
	}
}
