package api

// Benchmarks of the admin API's two load-bearing paths (bench/admin.sh runs
// them and bench/README.md explains the figures):
//
//   - deploying a 10,000-route draft (target: ≤ 200 ms), through HTTP and
//     below it, so that the HTTP and audit overhead can be told apart from
//     validate + canonical encode + sign + store; on bbolt, and on
//     PostgreSQL (the ...PG benchmarks, on a durable pgtest server);
//   - 200 concurrent readers of GET /instances over HTTPS, reporting p50,
//     p99 and requests/s.
//
// Targets are reported, never asserted: timings on a shared VM are too
// noisy to fail a build on.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/adminnode/store/pgstore"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

// benchAPI is the part of env a benchmark needs. env takes a *testing.T;
// this takes a *testing.B and a clock of the benchmark's choosing.
type benchAPI struct {
	store store.Store
	srv   *Server
	// size is how large the store is in bytes, to report its growth.
	size func() (int64, error)
}

// Stores a benchmark can run on.
type benchStore int

const (
	onBolt benchStore = iota
	onPostgres
)

func benchCheck(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// newBenchAPI builds a Server over a fresh bbolt store in a temporary
// directory, like newEnv. caFP is only shown by GET /domain.
func newBenchAPI(b *testing.B, now func() time.Time, caFP string) *benchAPI {
	return newBenchAPIOn(b, onBolt, now, caFP)
}

// newBenchAPIOn is newBenchAPI over a store of the kind given: on
// PostgreSQL, a fresh database of the package's server.
func newBenchAPIOn(b *testing.B, kind benchStore, now func() time.Time, caFP string) *benchAPI {
	b.Helper()
	var st store.Store
	var size func() (int64, error)
	switch kind {
	case onPostgres:
		// A server of its own that syncs every commit to disk, as bbolt
		// does and as a production server would: the package's server
		// does not.
		if pg == nil {
			b.Skip(pgtest.ErrNotInstalled)
		}
		srv, err := pgtest.StartDurable()
		benchCheck(b, err)
		b.Cleanup(srv.Stop) // after the database is dropped: cleanups run last first
		dsn := srv.Database(b)
		p, err := pgstore.Open(bg, dsn)
		benchCheck(b, err)
		st = p
		size = func() (int64, error) {
			conn, err := pgx.Connect(bg, dsn)
			if err != nil {
				return 0, err
			}
			defer conn.Close(bg)
			var n int64
			err = conn.QueryRow(bg, "SELECT pg_database_size(current_database())").Scan(&n)
			return n, err
		}
	default:
		path := filepath.Join(b.TempDir(), "admin.db")
		bolt, err := store.Open(path)
		benchCheck(b, err)
		st = bolt
		size = func() (int64, error) {
			fi, err := os.Stat(path)
			if err != nil {
				return 0, err
			}
			return fi.Size(), nil
		}
	}
	b.Cleanup(func() { st.Close() })
	pub, key, err := deploy.GenerateSigningKey()
	benchCheck(b, err)
	dom := store.Domain{Name: "bench", SigningPublicKey: pub}
	benchCheck(b, st.InitDomain(bg, dom))
	for _, r := range rbac.BuiltInRoles() {
		_, err := st.CreateRole(bg, r)
		benchCheck(b, err)
	}
	settingsKey, err := seal.Parse(seal.NewKeyFile())
	benchCheck(b, err)
	srv, err := New(Config{Store: st, Domain: dom, SigningKey: key, SettingsKey: settingsKey, CAFingerprint: caFP,
		PasswordCost: bcrypt.MinCost, Now: now})
	benchCheck(b, err)
	return &benchAPI{store: st, srv: srv, size: size}
}

// user creates a user bound to role over the whole domain.
func (a *benchAPI) user(b *testing.B, name, role string) {
	b.Helper()
	_, err := a.store.CreateUser(bg, store.User{Name: name, PasswordHash: testHash()})
	benchCheck(b, err)
	_, err = a.store.CreateRoleBinding(bg, store.RoleBinding{User: name, Role: role, Scope: store.Scope{Domain: true}})
	benchCheck(b, err)
}

// token returns a new bearer token of user, made directly in the store.
func (a *benchAPI) token(b *testing.B, user string) string {
	b.Helper()
	tok, err := auth.NewToken()
	benchCheck(b, err)
	_, err = a.store.CreateToken(bg, store.Token{ID: tok.ID, User: user, SecretHash: auth.HashSecret(tok.Secret)})
	benchCheck(b, err)
	return tok.Bearer
}

// dbMB is the size of the store (the bbolt file, the PostgreSQL
// database) in MiB.
func (a *benchAPI) dbMB(b *testing.B) float64 {
	n, err := a.size()
	benchCheck(b, err)
	return float64(n) / (1 << 20)
}

// bigDraft is a valid configuration of services × routesPer routes, the
// shape of a large real one rather than of copies of one route: exact,
// parameter and prefix paths, host and header matches, methods, policies
// on some services and routes, a few shared upstreams and consumers. (The
// gateway benchmarks have a similar generator, gateway/proxy.bigConfig;
// test files cannot be imported across packages.)
func bigDraft(services, routesPer int) *deploy.Config {
	cfg := &deploy.Config{
		GlobalPolicies: []deploy.Policy{{Name: "request-id"}},
	}
	for u := range 4 {
		up := deploy.Upstream{Name: fmt.Sprintf("pool%d", u), Retries: 1}
		for t := range 3 {
			up.Targets = append(up.Targets, deploy.Target{Address: fmt.Sprintf("10.0.%d.%d:8080", u, t+1)})
		}
		if u%2 == 0 {
			up.HealthCheck = &deploy.ActiveHealthCheck{Path: "/healthz"}
		}
		cfg.Upstreams = append(cfg.Upstreams, up)
	}
	for c := range 10 {
		cfg.Consumers = append(cfg.Consumers, deploy.Consumer{
			Name:        fmt.Sprintf("app%d", c),
			Credentials: []deploy.Credential{{Type: deploy.CredentialKey, Key: fmt.Sprintf("bench-key-%02d-0123456789abcdef", c)}},
		})
	}
	for s := range services {
		name := fmt.Sprintf("svc%03d", s)
		svc := deploy.Service{Name: name, Upstream: fmt.Sprintf("pool%d", s%4)}
		if s%2 == 0 {
			svc.Policies = []deploy.Policy{{Name: "rate-limit", Config: map[string]any{
				"limits": []any{map[string]any{"requests": 100, "window": "minute"}},
			}}}
		}
		base := "/" + name
		for r := range routesPer {
			rt := deploy.Route{Name: fmt.Sprintf("%s-r%03d", name, r)} // route names are unique across services
			switch r % 4 {
			case 0:
				rt.Paths = []string{fmt.Sprintf("%s/items%d", base, r)}
				rt.Methods = []string{"GET", "POST"}
			case 1:
				rt.Paths = []string{fmt.Sprintf("%s/items%d/{id}", base, r)}
				rt.Methods = []string{"GET", "PUT", "DELETE"}
			case 2:
				rt.Paths = []string{fmt.Sprintf("%s/p%d/*", base, r)}
				rt.Hosts = []string{name + ".example.com", "*." + name + ".example.net"}
				rt.StripPrefix = true
			default:
				rt.Paths = []string{fmt.Sprintf("%s/items%d/{id}/events/{event}", base, r)}
				rt.Headers = []deploy.HeaderMatch{{Name: "X-Canary", Values: []string{"on"}}}
				rt.Priority = 1
			}
			if r%25 == 0 {
				rt.Policies = []deploy.Policy{{Name: "cors", Config: map[string]any{"origins": []any{"https://app.example.com"}}}}
			}
			svc.Routes = append(svc.Routes, rt)
		}
		cfg.Services = append(cfg.Services, svc)
	}
	return cfg
}

// deploy10k is a store with group "big" whose draft has 10,000 routes, and
// an admin token. The draft is read back from the store so that what is
// benchmarked sees exactly what a real deploy does (JSON-decoded policy
// configurations and all).
func deploy10k(b *testing.B, kind benchStore) (a *benchAPI, draft store.Draft, admin string) {
	b.Helper()
	a = newBenchAPIOn(b, kind, time.Now, "SHA256:00")
	a.user(b, "admin", rbac.RoleDomainAdmin)
	admin = a.token(b, "admin")
	cfg := bigDraft(100, 100)
	if n := routeCount(cfg); n != 10000 {
		b.Fatalf("draft has %d routes, want 10000", n)
	}
	// Fail here, with the errors, rather than with a 422 in the loop.
	benchCheck(b, cfg.Validate(catalog.Checker{}))
	_, err := a.store.CreateGroup(bg, store.Group{Name: "big"})
	benchCheck(b, err)
	_, err = a.store.PutDraft(bg, "big", *cfg, 0, "admin")
	benchCheck(b, err)
	draft, err = a.store.GetDraft(bg, "big")
	benchCheck(b, err)
	return a, draft, admin
}

func routeCount(cfg *deploy.Config) int {
	n := 0
	for _, s := range cfg.Services {
		n += len(s.Routes)
	}
	return n
}

// BenchmarkDeploy10kRoutes is POST /groups/{group}/deployments of a
// 10,000-route draft over real HTTP on loopback, as `gatehouse deploy -m`
// sends it with --force (no draft_version, so the handler reads the draft
// once more to learn its version): authenticate, read the draft, validate, encode
// canonically, checksum, sign, store, audit. Target: ≤ 200 ms.
//
// Every iteration appends a full deployment to the bbolt file, as real
// deploys do, so the store grows during the run (about 2.6 MiB per op: the
// 1 MiB canonical configuration, base64 in the stored record, and bbolt's
// pages); db-MB reports where it ended.
func BenchmarkDeploy10kRoutes(b *testing.B) { benchDeploy10k(b, onBolt) }

// BenchmarkDeploy10kRoutesPG is BenchmarkDeploy10kRoutes on PostgreSQL: a
// server of its own on the same machine, through its Unix socket, syncing
// every commit to disk.
// db-MB is the database's size.
func BenchmarkDeploy10kRoutesPG(b *testing.B) { benchDeploy10k(b, onPostgres) }

func benchDeploy10k(b *testing.B, kind benchStore) {
	a, _, admin := deploy10k(b, kind)
	hs := httptest.NewServer(a.srv.Handler())
	defer hs.Close()
	client := hs.Client()
	url := hs.URL + apitypes.Prefix + "/groups/big/deployments"
	// force: every iteration deploys the same draft again, which is
	// otherwise refused as nothing to deploy.
	body := []byte(`{"message":"bench","force":true}`)

	var last apitypes.Deployment
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		benchCheck(b, err)
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		benchCheck(b, err)
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		benchCheck(b, err)
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("deploy: status %d, want 201: %s", resp.StatusCode, data)
		}
		// Decoding the small reply is part of what a client does; it also
		// proves the number advanced.
		last = apitypes.Deployment{}
		benchCheck(b, json.Unmarshal(data, &last))
	}
	if last.Number != uint64(b.N) {
		b.Fatalf("last deployment is #%d after %d deploys", last.Number, b.N)
	}
	reportDeploy(b, a, last.Group, last.Number)
}

// BenchmarkFreeze10kRoutes is the store's Freeze with the Server's sign,
// the deploy handler minus HTTP, authentication, the extra draft read and
// the audit entry: read and decode the draft, validate, encode
// canonically, checksum, sign, encode and store the deployment, commit.
func BenchmarkFreeze10kRoutes(b *testing.B) { benchFreeze10k(b, onBolt) }

// BenchmarkFreeze10kRoutesPG is BenchmarkFreeze10kRoutes on PostgreSQL.
func BenchmarkFreeze10kRoutesPG(b *testing.B) { benchFreeze10k(b, onPostgres) }

func benchFreeze10k(b *testing.B, kind benchStore) {
	a, draft, _ := deploy10k(b, kind)
	var last store.Deployment
	b.ReportAllocs()
	for b.Loop() {
		var err error
		last, err = a.store.Freeze(context.Background(), "big", draft.Version, func(d store.Draft, number uint64) (store.Deployment, error) {
			return a.srv.sign("big", number, &d.Config, "admin", "bench")
		})
		benchCheck(b, err)
	}
	reportDeploy(b, a, last.Group, last.Number)
}

// BenchmarkSign10kRoutes is the CPU part alone, without the store:
// validate, canonical encoding, checksum and signature of the draft as
// decoded from the store. Freeze minus this is bbolt's share (reading and
// decoding the draft, encoding and writing the deployment, fsync).
func BenchmarkSign10kRoutes(b *testing.B) {
	a, draft, _ := deploy10k(b, onBolt)
	var d store.Deployment
	b.ReportAllocs()
	for b.Loop() {
		var err error
		d, err = a.srv.sign("big", 1, &draft.Config, "admin", "bench")
		benchCheck(b, err)
	}
	// What a gateway checks, so that a broken sign cannot look fast.
	dep := deploy.Deployment{Domain: a.srv.domain.Name, Group: "big", Number: 1, Checksum: d.Checksum,
		Config: d.Config, Author: d.Author, Message: d.Message, CreatedAt: d.CreatedAt, Signature: d.Signature}
	benchCheck(b, dep.Verify(a.srv.domain.SigningPublicKey, catalog.Checker{}))
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
	b.ReportMetric(float64(len(d.Config))/1024, "canonical-KB")
}

// reportDeploy reports ms/op (the unit of the target), the size of the
// canonical configuration and of the store file, and checks the last
// deployment stored.
func reportDeploy(b *testing.B, a *benchAPI, group string, number uint64) {
	b.Helper()
	b.StopTimer()
	d, err := a.store.GetDeployment(bg, group, number)
	benchCheck(b, err)
	if _, err := deploy.DecodeCanonical(d.Config); err != nil {
		b.Fatalf("stored deployment %d does not decode: %v", number, err)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
	b.ReportMetric(float64(len(d.Config))/1024, "canonical-KB")
	b.ReportMetric(a.dbMB(b), "db-MB")
}

// Shape of the instance-list benchmark: 20 groups of 10 instances, read by
// 200 clients at once.
const (
	listGroups    = 20
	listPerGroup  = 10
	listReaders   = 200
	listInstances = listGroups * listPerGroup
)

// seedInstances makes the groups, hosts and instances, a small deployment
// per group, and heartbeat states that give every status: per group, 6
// Healthy, 1 Only Heartbeat (applied an older deployment), 1 Lost
// Connection, 1 Offline and 1 Pending (never heard from). So the list
// derives statuses against each group's current deployment, as in
// production.
func seedInstances(b *testing.B, a *benchAPI, now time.Time) {
	b.Helper()
	small, err := deploy.Decode([]byte(config("/a")))
	benchCheck(b, err)
	for h := range 50 {
		_, err := a.store.CreateHost(bg, store.Host{Name: fmt.Sprintf("host%02d", h), Labels: map[string]string{"zone": fmt.Sprintf("z%d", h%3)}})
		benchCheck(b, err)
	}
	for g := range listGroups {
		group := fmt.Sprintf("group%02d", g)
		_, err := a.store.CreateGroup(bg, store.Group{Name: group, Labels: map[string]string{"env": "prod", "team": fmt.Sprintf("t%d", g%4)}})
		benchCheck(b, err)
		d, err := a.store.PutDraft(bg, group, *small, 0, "admin")
		benchCheck(b, err)
		dep, err := a.store.Freeze(bg, group, d.Version, func(d store.Draft, number uint64) (store.Deployment, error) {
			return a.srv.sign(group, number, &d.Config, "admin", "seed")
		})
		benchCheck(b, err)
		for i := range listPerGroup {
			n := g*listPerGroup + i
			in := store.Instance{Name: fmt.Sprintf("%s-gw%d", group, i), Group: group, Host: fmt.Sprintf("host%02d", n%50),
				Listen: ":8080", TLSListen: ":8443", StatusListen: "127.0.0.1:8085"}
			_, err := a.store.CreateInstance(bg, in)
			benchCheck(b, err)
			st := store.InstanceState{Instance: in.Name, LastHeartbeat: now.Add(-2 * time.Second),
				AppliedDeployment: dep.Number, AppliedChecksum: dep.Checksum, Ready: true,
				Process: "running", PID: 1000 + n}
			switch i {
			case 6:
				st.AppliedDeployment, st.AppliedChecksum = 0, "" // still on its previous configuration
			case 7:
				st.LastHeartbeat = now.Add(-time.Minute)
			case 8:
				st.LastHeartbeat, st.Process, st.LastError = now.Add(-3*time.Hour), "stopped", "node manager unreachable"
			case 9:
				continue // Pending: no state
			}
			a.srv.observe([]store.InstanceState{st})
		}
	}
}

// BenchmarkInstanceListHTTPS is 200 clients reading GET /api/v1/instances
// (200 instances, statuses derived) at once, over HTTPS with a server
// certificate from the domain CA and the production TLS configuration
// (ca.ServerTLS on an http.Server with run.go's timeouts).
//
// b.N is the total number of requests, split evenly over the 200 readers,
// which each send their share back to back (a closed loop) and time every
// request; p50-ms and p99-ms are over all b.N latencies, req/s is b.N over
// the wall time. With 200 requests always in flight on a CPU-bound server,
// latency is mostly queueing: p50 ≈ 200 / req/s (Little's law), and p99 is
// how unfair that queue is. ns/op is wall time per request, 1/(req/s).
//
// Connections are set up before the timer: 200 keep-alive HTTP/1.1
// connections, one per concurrent reader, as 200 separate CLIs or
// dashboards would have (one shared HTTP/2 connection would measure
// multiplexing instead). new-conns counts connections the server accepted
// during the measurement, and should be 0; handshakes there would inflate
// p99.
func BenchmarkInstanceListHTTPS(b *testing.B) {
	// One fixed instant for the API's clock and the heartbeats, so that
	// statuses do not drift during the run. It is the real time rather
	// than a date of our choosing because the certificates are issued at
	// it and the TLS client checks them against the real clock.
	now := time.Now()
	root, err := ca.New("bench", now)
	benchCheck(b, err)
	a := newBenchAPI(b, func() time.Time { return now }, root.Fingerprint())
	seedInstances(b, a, now)
	a.user(b, "viewer", rbac.RoleViewer)
	tokens := make([]string, listReaders)
	for i := range tokens {
		tokens[i] = a.token(b, "viewer") // one token per client, as 200 logins would have
	}

	cert, err := root.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 24*time.Hour, now)
	benchCheck(b, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	benchCheck(b, err)
	var accepted atomic.Int64
	hs := &http.Server{
		Handler:           a.srv.Handler(),
		TLSConfig:         root.ServerTLS(cert),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		},
	}
	go func() { _ = hs.ServeTLS(l, "", "") }() // ErrServerClosed at Close
	defer hs.Close()

	tlsConfig, err := ca.ClientTLS(root.CertPEM(), nil)
	benchCheck(b, err)
	tr := &http.Transport{
		TLSClientConfig: tlsConfig,
		// No ForceAttemptHTTP2: with a custom TLS configuration the
		// transport speaks HTTP/1.1, one request per connection at a
		// time, so 200 readers hold 200 connections.
		MaxIdleConns:        listReaders,
		MaxIdleConnsPerHost: listReaders,
		MaxConnsPerHost:     listReaders,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	url := "https://" + l.Addr().String() + apitypes.Prefix + "/instances"

	// get sends one GET /instances. The body is read in full, as a client
	// must to reuse the connection, but kept only when asked (and for an
	// error): keeping or decoding 200 instances per request would spend
	// on the client the CPU the server shares with it.
	get := func(token string, keep bool) (code int, body []byte, err error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		if keep || resp.StatusCode != http.StatusOK {
			body, err = io.ReadAll(resp.Body)
			return resp.StatusCode, body, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil, err
	}

	// What the readers will read: every instance, every status.
	code, data, err := get(tokens[0], true)
	benchCheck(b, err)
	if code != http.StatusOK {
		b.Fatalf("GET /instances: status %d: %s", code, data)
	}
	var list []apitypes.Instance
	benchCheck(b, json.Unmarshal(data, &list))
	seen := map[string]int{}
	for _, in := range list {
		seen[in.Status]++
	}
	if len(list) != listInstances || len(seen) != len(status.Statuses()) {
		b.Fatalf("viewer sees %d instances with statuses %v, want %d with all of %v", len(list), seen, listInstances, status.Statuses())
	}

	// run has the readers send counts[i] requests each, all starting at
	// once; lat[i] receives reader i's latencies.
	run := func(counts []int, lat [][]time.Duration, timed bool) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range listReaders {
			wg.Go(func() {
				<-start
				for range counts[i] {
					t0 := time.Now()
					code, data, err := get(tokens[i], false)
					d := time.Since(t0)
					if err != nil {
						b.Errorf("reader %d: %v", i, err)
						return
					}
					if code != http.StatusOK {
						b.Errorf("reader %d: status %d: %.200s", i, code, data)
						return
					}
					if lat != nil {
						lat[i] = append(lat[i], d)
					}
				}
			})
		}
		if timed {
			b.ResetTimer()
		}
		close(start)
		wg.Wait()
		if timed {
			b.StopTimer()
		}
	}

	// Warm-up, untimed: rounds of one request per reader, all at once,
	// until the server has accepted a connection per reader (a reader
	// scheduled late can reuse one returned early, so one round may open
	// fewer), which also records each token's first use.
	once := slices.Repeat([]int{1}, listReaders)
	for round := 0; round < 10 && accepted.Load() < listReaders; round++ {
		run(once, nil, false)
		if b.Failed() {
			b.FailNow()
		}
	}
	before := accepted.Load()

	counts := make([]int, listReaders)
	lat := make([][]time.Duration, listReaders)
	for i := range counts {
		counts[i] = b.N / listReaders
		if i < b.N%listReaders {
			counts[i]++
		}
		lat[i] = make([]time.Duration, 0, counts[i])
	}
	b.ReportAllocs()
	run(counts, lat, true)
	if b.Failed() {
		b.FailNow()
	}
	elapsed := b.Elapsed()

	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(percentileMS(all, 50), "p50-ms")
	b.ReportMetric(percentileMS(all, 99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(accepted.Load()-before), "new-conns")
	b.ReportMetric(float64(len(data))/1024, "resp-KB")
}

// percentileMS is the p-th percentile of sorted (nearest rank), in
// milliseconds.
func percentileMS(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based
	return float64(sorted[max(i, 1)-1].Microseconds()) / 1e3
}
