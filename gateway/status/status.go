package status

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// Reporter is what the status port asks of the gateway.
type Reporter interface {
	// Ready reports whether traffic may be sent: a configuration is loaded
	// and the gateway is not draining.
	Ready() bool
	// Status describes the gateway; it is encoded as JSON.
	Status() any
	// Traffic is what the gateway has served since it started, for its
	// node manager (docs/metrics.md).
	Traffic() traffic.Snapshot
}

// Handler returns the status port's routes.
func Handler(r Reporter, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if r.Ready() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /traffic", func(w http.ResponseWriter, _ *http.Request) {
		// Not indented: read by a program every few seconds, and large
		// with many routes and consumers.
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Traffic())
	})
	return mux
}

// Profiling returns Go's /debug/pprof endpoints. They are never on the
// status port, which probes and scrapers reach from other machines:
// profiles and traces reveal the gateway's internals,
// and a CPU profile or trace costs CPU for as long as it is asked to run.
func Profiling() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
