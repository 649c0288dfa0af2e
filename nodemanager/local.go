package nodemanager

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse/metrics/traffic"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// The local API (docs/node-manager.md) listens on loopback only: gateways
// fetch their deployment and report back with their instance's secret;
// operators on the host read instances without a credential and restart
// them with the operator token. Loopback is not enough on its own: every
// local user and every web page the host's browser opens can reach it, so
// requests from a browser (an Origin header) or through a foreign name (a
// Host that is not loopback: DNS rebinding) are refused on every route.

type localError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeLocal(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func failLocal(w http.ResponseWriter, status int, code, msg string) {
	var e localError
	e.Error.Code, e.Error.Message = code, msg
	writeLocal(w, status, e)
}

func (a *agent) localHandler(reg *prometheus.Registry) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeLocal(w, http.StatusOK, map[string]string{"status": "ok", "host": a.id.Host, "domain": a.id.Domain})
	}).Methods("GET")
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).Methods("GET")
	r.HandleFunc("/v1/deployment", a.serveDeployment).Methods("GET")
	r.HandleFunc("/v1/instances/{name}/report", a.serveReport).Methods("PUT")
	r.HandleFunc("/v1/instances/{name}/traffic", a.serveTraffic).Methods("PUT")
	r.HandleFunc("/v1/instances", func(w http.ResponseWriter, _ *http.Request) {
		writeLocal(w, http.StatusOK, localapi.InstanceList{Instances: a.views()})
	}).Methods("GET")
	r.Handle("/v1/instances/{name}/restart", a.operator(http.HandlerFunc(a.serveRestart))).Methods("POST")
	return localOnly(r)
}

func (a *agent) serveRestart(w http.ResponseWriter, req *http.Request) {
	name := mux.Vars(req)["name"]
	if err := a.sup.Restart(req.Context(), name); err != nil {
		failLocal(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	a.log.Info("instance restarted on request", "instance", name)
	writeLocal(w, http.StatusAccepted, map[string]string{"restarting": name})
}

// localOnly refuses, before any route, a request that a web page made: one
// with an Origin header (a cross-site form or fetch; no client of this API
// sends one), or one whose Host is not a loopback address (a page whose
// name was rebound to 127.0.0.1 sends its own name).
func localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("Origin")) > 0 {
			failLocal(w, http.StatusForbidden, "forbidden", "the local API refuses requests from web pages (Origin header)")
			return
		}
		if !loopbackHost(r.Host) {
			failLocal(w, http.StatusForbidden, "forbidden", "the local API answers only a loopback Host (127.0.0.1, [::1], localhost)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost says whether a Host header names a loopback address:
// localhost or a loopback IP, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// operator lets through a request carrying the operator token
// (DATA_DIR/local-api.token) as a bearer token. An instance's secret is no
// operator's credential: a gateway may not restart its neighbours.
func (a *agent) operator(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get(localapi.HeaderAuthorization), localapi.BearerPrefix)
		if !ok || a.localToken == "" || subtle.ConstantTimeCompare([]byte(got), []byte(a.localToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse node manager"`)
			failLocal(w, http.StatusUnauthorized, "unauthorized",
				"this call needs the operator token: Authorization: Bearer <the content of "+localapi.TokenFile+" in the node manager's data dir>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorize checks the instance's secret and returns its group.
func (a *agent) authorize(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	in, ok := a.instance(name)
	secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok {
		want, err := a.state.Secret(name)
		ok = err == nil && subtle.ConstantTimeCompare([]byte(secret), []byte(want)) == 1
	}
	if !ok {
		failLocal(w, http.StatusUnauthorized, "unauthorized", "unknown instance or wrong secret")
		return "", false
	}
	return in.Group, true
}

// serveDeployment answers the blocking query of an instance's group
// deployment from the node's own store, so that gateways get what the node
// has even while the admin node is away.
func (a *agent) serveDeployment(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("instance")
	if _, ok := a.authorize(w, r, name); !ok {
		return
	}
	var known uint64
	blocking := q.Has("index")
	if blocking {
		n, err := strconv.ParseUint(q.Get("index"), 10, 64)
		if err != nil {
			failLocal(w, http.StatusBadRequest, "bad_request", "index must be a number")
			return
		}
		known = n
	}
	wait := 30 * time.Second
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			failLocal(w, http.StatusBadRequest, "bad_request", "wait must be a duration")
			return
		}
		wait = min(d, 5*time.Minute)
	}
	timer := time.NewTimer(wait + rand.N(wait/16+1))
	defer timer.Stop()
	for {
		changed := a.changed.wait()
		in, ok := a.instance(name)
		if !ok {
			failLocal(w, http.StatusNotFound, "not_found", "instance "+name+" is no longer desired on this host")
			return
		}
		ans, err := a.deployment(in)
		if err != nil {
			failLocal(w, http.StatusInternalServerError, "internal", err.Error())
			return
		}
		if !blocking || ans.Index != known {
			writeLocal(w, http.StatusOK, ans)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			writeLocal(w, http.StatusOK, ans)
			return
		case <-a.stopping:
			writeLocal(w, http.StatusOK, ans)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (a *agent) serveReport(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if _, ok := a.authorize(w, r, name); !ok {
		return
	}
	var rep localapi.Report
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		failLocal(w, http.StatusBadRequest, "bad_request", "report: "+err.Error())
		return
	}
	prev := a.lastReport(name)
	a.report(name, rep)
	if rep.AppliedDeployment != prev.AppliedDeployment || rep.LastError != prev.LastError || rep.Ready != prev.Ready ||
		rep.GatewayVersion != prev.GatewayVersion || rep.FeatureLevel != prev.FeatureLevel ||
		!reflect.DeepEqual(rep.Settings, prev.Settings) || !samePeerStates(rep.Peers, prev.Peers) {
		a.kickHeartbeat()
		a.log.Info("instance reports", "instance", name, "applied", rep.AppliedDeployment, "ready", rep.Ready, "error", rep.LastError)
	}
	writeLocal(w, http.StatusNoContent, nil)
}

// serveTraffic takes a stopping gateway's last traffic snapshot. Only the
// secret is checked, not that the instance is desired: a removed instance
// pushes while it stops, after it left the desired instances, and its
// secret is kept.
func (a *agent) serveTraffic(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	secrets, err := a.state.Secrets()
	want, ok := secrets[name]
	if err != nil || !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		failLocal(w, http.StatusUnauthorized, "unauthorized", "unknown instance or wrong secret")
		return
	}
	var snap traffic.Snapshot
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSnapshotBytes)).Decode(&snap); err != nil {
		failLocal(w, http.StatusBadRequest, "bad_request", "traffic snapshot: "+err.Error())
		return
	}
	if err := a.traffic.push(name, &snap); err != nil {
		code := http.StatusConflict
		if errors.Is(err, errUnknownInstance) {
			code = http.StatusNotFound
		}
		failLocal(w, code, "bad_snapshot", err.Error())
		return
	}
	a.log.Debug("last traffic counts of a stopping gateway", "instance", name, "series", len(snap.Series))
	writeLocal(w, http.StatusNoContent, nil)
}

func (a *agent) lastReport(name string) localapi.Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reports[name].Report
}

// samePeerStates reports whether two gossip views agree on every peer's
// state: a change is news for the admin node at once (a dead peer).
func samePeerStates(a, b []localapi.Peer) bool {
	if len(a) != len(b) {
		return false
	}
	states := make(map[string]string, len(a))
	for _, p := range a {
		states[p.Name] = p.State
	}
	for _, p := range b {
		if s, ok := states[p.Name]; !ok || s != p.State {
			return false
		}
	}
	return true
}
