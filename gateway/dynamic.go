package gateway

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/gateway/proxy"
	"github.com/gatehouse/gatehouse/gateway/status"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// Dynamic settings (docs/gateway.md#dynamic-settings): the log level, the
// access log and request tracing, changed at run time through the control
// endpoint, which only the node manager that started the gateway can
// call (it holds the instance's secret).

// logLevels are the levels the log can be set to.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// maxSettingsBody bounds a control request.
const maxSettingsBody = 4 << 10

// dynamic is the state of the dynamic settings.
type dynamic struct {
	mu  sync.Mutex
	cur localapi.Settings
	// base is the log level the gateway was started with, which an unset
	// level returns to.
	base  hclog.Level
	timer *time.Timer

	// Read on every exchange while an observer is set: percent of the
	// exchanges go to the access log (0: none), seen counts them, and
	// trace is the route traced, nil when none.
	percent atomic.Int64
	seen    atomic.Uint64
	trace   atomic.Pointer[traceState]
}

type traceState struct {
	route string
	until time.Time
}

// matches says whether the exchange is of the traced route: its name, or
// "service/route".
func (t *traceState) matches(ex *proxy.Exchange) bool {
	if ex.Route == "" {
		return false
	}
	if svc, rt, ok := strings.Cut(t.route, "/"); ok {
		return ex.Service == svc && ex.Route == rt
	}
	return ex.Route == t.route
}

// checkSettings refuses settings the gateway cannot run, naming the field.
func checkSettings(s localapi.Settings) error {
	switch {
	case s.LogLevel != "" && !slices.Contains(logLevels, s.LogLevel):
		return fmt.Errorf("log_level: must be one of %s, not %q", strings.Join(logLevels, ", "), s.LogLevel)
	case s.AccessLogPercent < 0 || s.AccessLogPercent > 100:
		return fmt.Errorf("access_log_percent: must be between 0 and 100, not %d", s.AccessLogPercent)
	case s.TraceRoute == "" && !s.TraceUntil.IsZero():
		return errors.New("trace_until: is for a trace_route")
	case s.TraceRoute != "" && s.TraceUntil.IsZero():
		return errors.New("trace_until: required with trace_route")
	}
	return nil
}

// ApplySettings replaces the gateway's dynamic settings: the log level at
// once, the access log and tracing from the next exchange on. A trace
// whose end has passed is not started.
func (g *Gateway) ApplySettings(s localapi.Settings) error {
	if err := checkSettings(s); err != nil {
		return err
	}
	d := &g.dyn
	d.mu.Lock()
	defer d.mu.Unlock()
	level := d.base
	if s.LogLevel != "" {
		level = hclog.LevelFromString(s.LogLevel)
	}
	g.logger.SetLevel(level)
	d.percent.Store(int64(s.AccessLogPercent))
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.trace.Store(nil)
	if s.TraceRoute != "" && time.Until(s.TraceUntil) > 0 {
		t := &traceState{route: s.TraceRoute, until: s.TraceUntil}
		d.trace.Store(t)
		d.timer = time.AfterFunc(time.Until(s.TraceUntil), func() { g.endTrace(t) })
	} else {
		s.TraceRoute, s.TraceUntil = "", time.Time{}
	}
	d.cur = s
	g.setObserver()
	g.logger.Info("dynamic settings applied", "log_level", level.String(), "access_log_percent", s.AccessLogPercent,
		"trace_route", s.TraceRoute, "trace_until", s.TraceUntil)
	if g.remote != nil {
		g.remote.reportNow()
	}
	return nil
}

// endTrace stops trace t when its time is up, unless other settings
// replaced it meanwhile.
func (g *Gateway) endTrace(t *traceState) {
	d := &g.dyn
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.trace.CompareAndSwap(t, nil) {
		return
	}
	d.cur.TraceRoute, d.cur.TraceUntil = "", time.Time{}
	d.timer = nil
	g.setObserver()
	g.logger.Info("request tracing ended", "route", t.route)
	if g.remote != nil {
		g.remote.reportNow()
	}
}

// setObserver hands the proxy the observer only while an access log or a
// trace needs it, so that exchanges cost nothing more otherwise. Called
// under d.mu.
func (g *Gateway) setObserver() {
	if g.dyn.percent.Load() > 0 || g.dyn.trace.Load() != nil {
		g.proxy.SetObserver(g.observe)
		return
	}
	g.proxy.SetObserver(nil)
}

// settings returns the dynamic settings in force; nil when the gateway
// runs as started.
func (g *Gateway) settings() *localapi.Settings {
	d := &g.dyn
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == (localapi.Settings{}) {
		return nil
	}
	s := d.cur
	return &s
}

// observe writes the access log line of a sampled exchange, and the trace
// of an exchange of the traced route.
func (g *Gateway) observe(ex *proxy.Exchange) {
	d := &g.dyn
	if pct := uint64(d.percent.Load()); pct > 0 {
		n := d.seen.Add(1)
		if pct >= 100 || n*pct/100 != (n-1)*pct/100 {
			g.access.Info("access", "method", string(ex.Method), "path", string(ex.Path), "status", ex.Status,
				"duration_ms", float64(ex.Duration)/float64(time.Millisecond), "service", ex.Service, "route", ex.Route,
				"request_id", string(ex.RequestID))
		}
	}
	if t := d.trace.Load(); t != nil && t.matches(ex) && time.Now().Before(t.until) {
		g.tracer.Info("trace", "method", string(ex.Method), "path", string(ex.Path), "status", ex.Status,
			"duration_ms", float64(ex.Duration)/float64(time.Millisecond),
			"upstream_ms", float64(ex.UpstreamTime)/float64(time.Millisecond),
			"service", ex.Service, "route", ex.Route, "request_id", string(ex.RequestID))
	}
}

// statusHandler is the status port's routes, with the control endpoint
// under a node manager.
func (g *Gateway) statusHandler() http.Handler {
	h := status.Handler(g, g.gatherer)
	if g.opts.InstanceSecret == "" {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("PUT "+localapi.GatewayPathSettings, g.serveSettings)
	return mux
}

// serveSettings is the control endpoint: the instance's secret is asked
// for, so that only its node manager changes what the gateway logs.
func (g *Gateway) serveSettings(w http.ResponseWriter, r *http.Request) {
	secret, ok := strings.CutPrefix(r.Header.Get(localapi.HeaderAuthorization), localapi.BearerPrefix)
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(g.opts.InstanceSecret)) != 1 {
		controlError(w, http.StatusUnauthorized, "unauthorized", "the instance's secret is required")
		return
	}
	var s localapi.Settings
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSettingsBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		controlError(w, http.StatusBadRequest, "bad_request", "settings: "+err.Error())
		return
	}
	if err := g.ApplySettings(s); err != nil {
		controlError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func controlError(w http.ResponseWriter, code int, kind, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(localapi.ErrorBody{Error: localapi.Error{Code: kind, Message: message}})
}
