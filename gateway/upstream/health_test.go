package upstream

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/hashicorp/go-hclog"
)

// Answers of a backend.
const (
	answerOK = iota
	answerError
	answerSlow
)

// backend is a target on loopback whose answer the test changes.
type backend struct {
	srv    *httptest.Server
	answer atomic.Int32
	mu     sync.Mutex
	probes []string
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.probes = append(b.probes, r.Method+" "+r.URL.Path)
		b.mu.Unlock()
		switch b.answer.Load() {
		case answerError:
			w.WriteHeader(http.StatusInternalServerError)
		case answerSlow:
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) address() string { return b.srv.Listener.Addr().String() }

func (b *backend) lastProbe() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.probes) == 0 {
		return ""
	}
	return b.probes[len(b.probes)-1]
}

// syncBuffer is a log destination the test reads while checkers write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func newTestRegistry(t *testing.T) (*Registry, *events, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	r := NewRegistry(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}))
	ev := &events{}
	r.OnChange(ev.hook)
	t.Cleanup(r.Close)
	return r, ev, logs
}

func fastCheck() *deploy.ActiveHealthCheck {
	return &deploy.ActiveHealthCheck{
		Path:     "/healthz",
		Interval: deploy.Duration(100 * time.Millisecond),
		Timeout:  deploy.Duration(50 * time.Millisecond),
	}
}

func TestActiveHealthCheck(t *testing.T) {
	tests := []struct {
		name   string
		answer int32
		reason string
	}{
		{"error status", answerError, "status 500"},
		{"timeout", answerSlow, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			r, ev, logs := newTestRegistry(t)
			ups, err := r.Update([]deploy.Upstream{{
				Name:        "api",
				Targets:     []deploy.Target{{Address: b.address()}},
				HealthCheck: fastCheck(),
			}})
			if err != nil {
				t.Fatal(err)
			}
			target := ups["api"].Targets[0]
			waitfor.True(t, 5*time.Second, "the first probe", func() bool { return b.lastProbe() != "" })
			if got := b.lastProbe(); got != "GET /healthz" {
				t.Errorf("probe = %q, want GET /healthz", got)
			}
			if !target.Healthy() {
				t.Fatal("target down while its probes pass")
			}

			b.answer.Store(tt.answer)
			waitfor.True(t, 5*time.Second, "the target is down", func() bool { return !target.Healthy() })
			b.answer.Store(answerOK)
			waitfor.True(t, 5*time.Second, "the target is up", target.Healthy)

			want := []string{"api/" + b.address() + "=true", "api/" + b.address() + "=false", "api/" + b.address() + "=true"}
			if got := ev.list(); !slices.Equal(got, want) {
				t.Errorf("hook saw %v, want %v", got, want)
			}
			log := logs.String()
			for _, line := range []string{
				"[WARN]  health: target unhealthy: upstream=api target=" + b.address() + " reason=",
				"[INFO]  health: target healthy: upstream=api target=" + b.address(),
			} {
				if !strings.Contains(log, line) {
					t.Errorf("log lacks %q:\n%s", line, log)
				}
			}
			if !strings.Contains(log, tt.reason) {
				t.Errorf("log lacks the reason %q:\n%s", tt.reason, log)
			}
			if n := target.Client.ConnsCount(); n != 0 {
				t.Errorf("probes opened %d connections of the proxy's pool", n)
			}
		})
	}
}

func TestActiveHealthCheckUnreachable(t *testing.T) {
	b := newBackend(t)
	addr := b.address()
	b.srv.Close()
	r, _, _ := newTestRegistry(t)
	ups, err := r.Update([]deploy.Upstream{{Name: "api", Targets: []deploy.Target{{Address: addr}}, HealthCheck: fastCheck()}})
	if err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "the closed target is down", func() bool { return !ups["api"].Targets[0].Healthy() })
	if got := ups["api"].Pick(nil, nil); got != nil {
		t.Errorf("Pick = %s with the only target down, want nil", got.Address)
	}
}

func TestRecordProbe(t *testing.T) {
	tests := []struct {
		name                         string
		healthyAfter, unhealthyAfter int
		startDown                    bool
		probes                       string // + passed, - failed
		down                         bool
		changes                      int
	}{
		{"below the unhealthy threshold", 2, 3, false, "--", false, 0},
		{"unhealthy threshold", 2, 3, false, "---", true, 1},
		{"failures must be consecutive", 2, 3, false, "--+--", false, 0},
		{"further failures change nothing", 2, 3, false, "-----", true, 1},
		{"below the healthy threshold", 2, 3, true, "+", true, 0},
		{"healthy threshold", 2, 3, true, "++", false, 1},
		{"successes must be consecutive", 2, 3, true, "+-+", true, 0},
		{"down and up again", 1, 1, false, "-+-", true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCore(testEnv(), "u", "a:80", resolveTimeouts(deploy.Timeouts{}))
			c.down.Store(tt.startDown)
			changes := 0
			for _, p := range tt.probes {
				if c.recordProbe(p == '+', tt.healthyAfter, tt.unhealthyAfter, nil) {
					changes++
				}
			}
			if c.down.Load() != tt.down || changes != tt.changes {
				t.Errorf("after %s: down %t with %d changes, want down %t with %d", tt.probes, c.down.Load(), changes, tt.down, tt.changes)
			}
		})
	}
}

func TestProbeAfterStopIsDropped(t *testing.T) {
	c := newCore(testEnv(), "u", "a:80", resolveTimeouts(deploy.Timeouts{}))
	stop := make(chan struct{})
	close(stop)
	if c.recordProbe(false, 1, 1, stop) || c.down.Load() {
		t.Error("a probe of a stopped checker changed the target")
	}
}

func TestProbeStatuses(t *testing.T) {
	tests := []struct {
		statuses []int
		pass     []int
		fail     []int
	}{
		{nil, []int{200, 204, 301, 399}, []int{100, 199, 400, 404, 500, 503}},
		{[]int{200}, []int{200}, []int{204, 301, 500}},
		{[]int{200, 401}, []int{200, 401}, []int{204, 403}},
	}
	for _, tt := range tests {
		c := &checker{cfg: deploy.ActiveHealthCheck{Statuses: tt.statuses}}
		for _, s := range tt.pass {
			if !c.passes(s) {
				t.Errorf("statuses %v: %d fails, want it to pass", tt.statuses, s)
			}
		}
		for _, s := range tt.fail {
			if c.passes(s) {
				t.Errorf("statuses %v: %d passes, want it to fail", tt.statuses, s)
			}
		}
	}
}

func TestHealthCheckRemoved(t *testing.T) {
	b := newBackend(t)
	b.answer.Store(answerError)
	r, _, _ := newTestRegistry(t)
	cfg := deploy.Upstream{Name: "api", Targets: []deploy.Target{{Address: b.address()}}, HealthCheck: fastCheck()}
	ups, err := r.Update([]deploy.Upstream{cfg})
	if err != nil {
		t.Fatal(err)
	}
	target := ups["api"].Targets[0]
	waitfor.True(t, 5*time.Second, "the target is down", func() bool { return !target.Healthy() })
	checker := r.checkers["api"]

	cfg.HealthCheck = nil
	if _, err := r.Update([]deploy.Upstream{cfg}); err != nil {
		t.Fatal(err)
	}
	// Nothing would ever bring it back otherwise.
	if !target.Healthy() {
		t.Error("target still down after its health check was removed")
	}
	select {
	case <-checker.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the checker of the removed health check is still running")
	}
}

func TestCheckerKeptAcrossReloads(t *testing.T) {
	b := newBackend(t)
	r, _, _ := newTestRegistry(t)
	cfg := deploy.Upstream{Name: "api", Targets: []deploy.Target{{Address: b.address()}}, HealthCheck: fastCheck()}
	if _, err := r.Update([]deploy.Upstream{cfg}); err != nil {
		t.Fatal(err)
	}
	first := r.checkers["api"]

	tests := []struct {
		name    string
		change  func(u *deploy.Upstream)
		restart bool
	}{
		{"unchanged", func(*deploy.Upstream) {}, false},
		{"retries changed", func(u *deploy.Upstream) { u.Retries = 2 }, false},
		{"weight changed", func(u *deploy.Upstream) { u.Targets[0].Weight = 5 }, false},
		{"path changed", func(u *deploy.Upstream) { u.HealthCheck.Path = "/ready" }, true},
		{"target added", func(u *deploy.Upstream) { u.Targets = append(u.Targets, deploy.Target{Address: "127.0.0.1:1"}) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := cfg
			hc := *cfg.HealthCheck
			next.HealthCheck = &hc
			next.Targets = slices.Clone(cfg.Targets)
			tt.change(&next)
			if _, err := r.Update([]deploy.Upstream{next}); err != nil {
				t.Fatal(err)
			}
			if restarted := r.checkers["api"] != first; restarted != tt.restart {
				t.Errorf("checker restarted: %t, want %t", restarted, tt.restart)
			}
			// Back to the first configuration for the next case.
			if _, err := r.Update([]deploy.Upstream{cfg}); err != nil {
				t.Fatal(err)
			}
			first = r.checkers["api"]
		})
	}
}

func TestCloseStopsCheckers(t *testing.T) {
	b := newBackend(t)
	r, _, _ := newTestRegistry(t)
	var ups []deploy.Upstream
	for i := range 3 {
		ups = append(ups, deploy.Upstream{Name: fmt.Sprint("api", i), Targets: []deploy.Target{{Address: b.address()}}, HealthCheck: fastCheck()})
	}
	if _, err := r.Update(ups); err != nil {
		t.Fatal(err)
	}
	checkers := make([]*checker, 0, len(r.checkers))
	for _, c := range r.checkers {
		checkers = append(checkers, c)
	}
	r.Close()
	for _, c := range checkers {
		select {
		case <-c.done:
		default:
			t.Fatal("Close returned with a checker running")
		}
	}
	if _, err := r.Update(ups); err != ErrClosed {
		t.Errorf("Update after Close: error %v, want ErrClosed", err)
	}
}
