package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/internal/testaddr"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// adminStub is a TLS server with a certificate of the domain CA, standing
// for one admin node: it answers every request with status (200 by
// default) and counts what it got.
type adminStub struct {
	srv    *httptest.Server
	status atomic.Int32
	hits   atomic.Int32
	mu     sync.Mutex
	paths  []string // method, path and query of each request
	bodies []string
	// handle, when set, answers instead.
	handle func(w http.ResponseWriter, r *http.Request)
}

func (s *adminStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	s.paths = append(s.paths, r.Method+" "+r.URL.RequestURI())
	body, _ := io.ReadAll(r.Body)
	s.bodies = append(s.bodies, string(body))
	s.mu.Unlock()
	if s.handle != nil {
		s.handle(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	status := int(s.status.Load())
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if status >= 300 {
		fmt.Fprintf(w, `{"code":"status_%d","message":"answered %d"}`, status, status)
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok","domain":"test","seq":1,"index":9}`))
}

func (s *adminStub) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// startStub serves a stub on l with a certificate for localhost,
// admin.test and the loopback addresses.
func startStub(t *testing.T, root *ca.CA, l net.Listener) *adminStub {
	t.Helper()
	s := &adminStub{}
	srv := httptest.NewUnstartedServer(s)
	srv.Listener.Close()
	srv.Listener = l
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverChain(t, root, []string{"localhost", "admin.test"}, ips, root)}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.srv = srv
	return s
}

func newStub(t *testing.T, root *ca.CA) *adminStub {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startStub(t, root, l)
}

// refusedAddress is an admin node that refuses connections for the whole
// test.
func refusedAddress(t *testing.T) string {
	t.Helper()
	return "https://" + testaddr.Dead(t)
}

// moves records the client's moves.
type moves struct {
	mu   sync.Mutex
	list []string
}

func (m *moves) record(from, to string, cause error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append(m.list, from+" -> "+to)
}

func (m *moves) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.list)
}

func failoverClient(t *testing.T, root *ca.CA, m *moves, addrs ...string) *Client {
	t.Helper()
	c, err := New(Config{Address: strings.Join(addrs, ", "), CACertPEM: root.CertPEM(), Timeout: 10 * time.Second, OnFailover: m.record})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFailoverGet(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// firstStatus is what the first admin node answers; refused: it
		// does not listen at all.
		firstStatus int
		refused     bool
		// wantMove: the GET is answered by the second, and so is the
		// next one, without asking the first again.
		wantMove   bool
		wantStatus int // the error's status when the GET fails
	}{
		{name: "works", firstStatus: http.StatusOK},
		{name: "connection refused", refused: true, wantMove: true},
		{name: "503", firstStatus: http.StatusServiceUnavailable, wantMove: true},
		{name: "502", firstStatus: http.StatusBadGateway, wantMove: true},
		{name: "500", firstStatus: http.StatusInternalServerError, wantMove: true},
		{name: "404", firstStatus: http.StatusNotFound, wantStatus: http.StatusNotFound},
		{name: "409", firstStatus: http.StatusConflict, wantStatus: http.StatusConflict},
		{name: "501", firstStatus: http.StatusNotImplemented, wantStatus: http.StatusNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newCA(t, "test")
			first, second := newStub(t, root), newStub(t, root)
			first.status.Store(int32(tt.firstStatus))
			firstAddr := first.srv.URL
			if tt.refused {
				firstAddr = refusedAddress(t)
			}
			var m moves
			c := failoverClient(t, root, &m, firstAddr, second.srv.URL)
			for range 3 {
				_, err := c.Domain(ctx)
				var apiErr *APIError
				switch {
				case tt.wantStatus != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus):
					t.Fatalf("Domain: %v, want an APIError %d", err, tt.wantStatus)
				case tt.wantStatus == 0 && err != nil:
					t.Fatalf("Domain: %v", err)
				}
			}
			wantFirst, wantSecond, wantMoves := int32(3), int32(0), 0
			switch {
			case tt.wantMove && tt.refused:
				wantFirst, wantSecond, wantMoves = 0, 3, 1
			case tt.wantMove:
				wantFirst, wantSecond, wantMoves = 1, 3, 1
			}
			if first.hits.Load() != wantFirst || second.hits.Load() != wantSecond || m.count() != wantMoves {
				t.Errorf("first got %d requests, second %d, moves %v; want %d, %d and %d moves",
					first.hits.Load(), second.hits.Load(), m.list, wantFirst, wantSecond, wantMoves)
			}
		})
	}
}

// TestFailoverPostNotReplayed: a request that may change something is
// sent to the next admin node only when it cannot have reached the first.
func TestFailoverPostNotReplayed(t *testing.T) {
	ctx := context.Background()
	reset := func(w http.ResponseWriter, r *http.Request) {
		// The request was read whole: the connection dies before the
		// answer, as when the admin node is killed mid-request.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		tcp := conn.(*tls.Conn).NetConn().(*net.TCPConn)
		tcp.SetLinger(0)
		tcp.Close()
	}
	tests := []struct {
		name    string
		status  int
		handle  func(w http.ResponseWriter, r *http.Request)
		refused bool
		// wantSent: the deploy reaches the second admin node.
		wantSent bool
	}{
		{name: "503", status: http.StatusServiceUnavailable},
		{name: "500", status: http.StatusInternalServerError},
		{name: "reset after sending", handle: reset},
		{name: "connection refused", refused: true, wantSent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newCA(t, "test")
			first, second := newStub(t, root), newStub(t, root)
			first.status.Store(int32(tt.status))
			first.handle = tt.handle
			firstAddr := first.srv.URL
			if tt.refused {
				firstAddr = refusedAddress(t)
			}
			var m moves
			c := failoverClient(t, root, &m, firstAddr, second.srv.URL)
			_, err := c.Deploy(ctx, "g", apitypes.DeployRequest{Message: "once"})
			if !tt.wantSent && tt.handle != nil && (err == nil || !strings.Contains(err.Error(), "it is not sent to another")) {
				t.Fatalf("Deploy: %v, want an error saying it may have reached the admin node", err)
			}
			if tt.wantSent != (err == nil) {
				t.Fatalf("Deploy: %v; want it sent to the second admin node: %v", err, tt.wantSent)
			}
			deploys := 0
			for _, p := range second.requests() {
				if strings.HasPrefix(p, "POST ") {
					deploys++
				}
			}
			if want := map[bool]int{true: 1}[tt.wantSent]; deploys != want {
				t.Fatalf("the second admin node got %d deploys, want %d", deploys, want)
			}
			// Whatever happened to the deploy, the client has moved on.
			if _, err := c.Domain(ctx); err != nil {
				t.Fatalf("Domain after the failed deploy: %v", err)
			}
			if got := second.hits.Load(); got != int32(deploys+1) {
				t.Errorf("the second admin node got %d requests, want the GET after the deploy too", got)
			}
		})
	}
}

// TestFailoverIdempotentAgentCalls: heartbeats and traffic batches are
// sent again, unchanged, to the next admin node.
func TestFailoverIdempotentAgentCalls(t *testing.T) {
	ctx := context.Background()
	root := newCA(t, "test")
	first, second := newStub(t, root), newStub(t, root)
	first.status.Store(http.StatusServiceUnavailable)
	var m moves
	c := failoverClient(t, root, &m, first.srv.URL, second.srv.URL)
	if _, err := c.Heartbeat(ctx, apitypes.AgentHeartbeat{}); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	second.status.Store(http.StatusServiceUnavailable)
	first.status.Store(http.StatusOK)
	b := traffic.Batch{Node: "h1", Seq: 7, End: time.Now()}
	if _, err := c.SendTraffic(ctx, b); err != nil {
		t.Fatalf("SendTraffic: %v", err)
	}
	want := []string{"PUT " + apitypes.AgentPrefix + "/heartbeat", "POST " + apitypes.AgentPrefix + "/traffic"}
	if got := first.requests(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("first admin node got %q, want %q", got, want)
	}
	if got := second.requests(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("second admin node got %q, want %q", got, want)
	}
	// The batch is the same, byte for byte: its (node, seq) included.
	first.mu.Lock()
	second.mu.Lock()
	defer first.mu.Unlock()
	defer second.mu.Unlock()
	if first.bodies[1] != second.bodies[1] || !strings.Contains(second.bodies[1], `"seq":7`) {
		t.Errorf("the traffic batch sent again differs: first got %s, second %s", first.bodies[1], second.bodies[1])
	}
}

// TestFailoverBlockingQuery: a blocking query held by an admin node that
// dies goes on at the next one, from the same index.
func TestFailoverBlockingQuery(t *testing.T) {
	root := newCA(t, "test")
	first, second := newStub(t, root), newStub(t, root)
	held := make(chan struct{})
	first.handle = func(w http.ResponseWriter, r *http.Request) {
		close(held)
		<-r.Context().Done()
	}
	var m moves
	c := failoverClient(t, root, &m, first.srv.URL, second.srv.URL)
	index := uint64(41)
	done := make(chan error, 1)
	go func() {
		_, err := c.WatchInstances(context.Background(), &index, 5*time.Second)
		done <- err
	}()
	<-held
	// The admin node dies with the query open.
	first.srv.CloseClientConnections()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WatchInstances: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking query did not resume on the second admin node")
	}
	want := "GET " + apitypes.AgentPrefix + "/instances?index=41&wait=5s"
	if got := second.requests(); len(got) != 1 || got[0] != want {
		t.Errorf("second admin node got %q, want %q", got, want)
	}
}

// TestFailoverDNSName: a name with several addresses is one admin node per
// address, each dialled directly and checked against the name, by CA
// certificate and by pinned fingerprint.
func TestFailoverDNSName(t *testing.T) {
	ctx := context.Background()
	root := newCA(t, "test")
	first := newStub(t, root)
	_, port, _ := net.SplitHostPort(first.srv.Listener.Addr().String())
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", port))
	if err != nil {
		t.Skipf("127.0.0.2 cannot listen on the first server's port here: %v", err)
	}
	second := startStub(t, root, l)
	resolver := resolverFunc(func(_ context.Context, host string) ([]net.IPAddr, error) {
		if host != "admin.test" {
			return nil, fmt.Errorf("no such host %s", host)
		}
		return []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}, {IP: net.IPv4(127, 0, 0, 2)}}, nil
	})
	for _, trust := range []string{"certificate", "fingerprint"} {
		t.Run(trust, func(t *testing.T) {
			first.hits.Store(0)
			second.hits.Store(0)
			first.status.Store(0)
			cfg := Config{Address: "https://admin.test:" + port, Resolver: resolver, Timeout: 10 * time.Second}
			if trust == "certificate" {
				cfg.CACertPEM = root.CertPEM()
			} else {
				cfg.CAFingerprint = root.Fingerprint()
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := c.Domain(ctx); err != nil {
					t.Fatalf("Domain: %v", err)
				}
			}
			first.status.Store(http.StatusServiceUnavailable)
			for range 2 {
				if _, err := c.Domain(ctx); err != nil {
					t.Fatalf("Domain with 127.0.0.1 answering 503: %v", err)
				}
			}
			if first.hits.Load() != 3 || second.hits.Load() != 2 {
				t.Errorf("127.0.0.1 got %d requests, 127.0.0.2 %d; want 3 and 2", first.hits.Load(), second.hits.Load())
			}
		})
	}
}

type resolverFunc func(ctx context.Context, host string) ([]net.IPAddr, error)

func (f resolverFunc) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return f(ctx, host)
}

func TestFailoverAllDown(t *testing.T) {
	var m moves
	c := failoverClient(t, newCA(t, "test"), &m, refusedAddress(t), refusedAddress(t))
	_, err := c.Domain(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no admin node of 2 answered") {
		t.Fatalf("Domain: %v, want an error naming both admin nodes tried", err)
	}
}

func TestAddressList(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "comma-separated", cfg: Config{Address: "https://a:1, b:2"}},
		{name: "list", cfg: Config{Addresses: []string{"https://a:1", "b:2"}}},
		{name: "both", cfg: Config{Address: "a:1", Addresses: []string{"b:2"}}, wantErr: "not both"},
		{name: "empty entry", cfg: Config{Address: "a:1,,b:2"}, wantErr: `admin node addresses "a:1,,b:2": an empty one`},
		{name: "plain HTTP with a CA", cfg: Config{Address: "https://a:1,http://b:2", CAFingerprint: "SHA256:" + strings.Repeat("ab", 32)}, wantErr: "http://b:2 is plain HTTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("New: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestFailoverInFlightQueryFollowsMove: a blocking query held by an admin
// node that stops answering, without closing its connections, goes on at
// the next as soon as another request finds that node failing, instead of
// waiting out its timeout.
func TestFailoverInFlightQueryFollowsMove(t *testing.T) {
	root := newCA(t, "test")
	first, second := newStub(t, root), newStub(t, root)
	held := make(chan struct{})
	first.handle = func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			close(held)
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	var m moves
	c, err := New(Config{Address: first.srv.URL + "," + second.srv.URL, CACertPEM: root.CertPEM(), Timeout: time.Minute, OnFailover: m.record})
	if err != nil {
		t.Fatal(err)
	}
	index := uint64(7)
	done := make(chan error, 1)
	go func() {
		_, err := c.WatchInstances(context.Background(), &index, 30*time.Second)
		done <- err
	}()
	<-held
	if _, err := c.Heartbeat(context.Background(), apitypes.AgentHeartbeat{}); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WatchInstances: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking query stayed on the admin node the client had moved off")
	}
	// In either order: the query may resume before the heartbeat lands.
	want := []string{"GET " + apitypes.AgentPrefix + "/instances?index=7&wait=30s", "PUT " + apitypes.AgentPrefix + "/heartbeat"}
	got := second.requests()
	slices.Sort(got)
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("second admin node got %q, want %q", got, want)
	}
}

// TestFailoverDeadline: an admin node that does not answer within the
// caller's deadline is left for the next request.
func TestFailoverDeadline(t *testing.T) {
	root := newCA(t, "test")
	first, second := newStub(t, root), newStub(t, root)
	first.handle = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	var m moves
	c := failoverClient(t, root, &m, first.srv.URL, second.srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Domain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Domain: %v, want the deadline", err)
	}
	if _, err := c.Domain(context.Background()); err != nil {
		t.Fatalf("Domain after the deadline: %v", err)
	}
	if first.hits.Load() != 1 || second.hits.Load() != 1 {
		t.Errorf("first got %d requests, second %d; want 1 each", first.hits.Load(), second.hits.Load())
	}
}

// TestFailoverResolvesAgain: a name is resolved at the first request and
// again only after a request found every address failing, so that an
// admin node moved to a new address is found.
func TestFailoverResolvesAgain(t *testing.T) {
	root := newCA(t, "test")
	srv := newStub(t, root)
	_, port, _ := net.SplitHostPort(srv.srv.Listener.Addr().String())
	var lookups atomic.Int32
	var ips atomic.Value
	ips.Store([]net.IPAddr{{IP: net.IPv4(127, 0, 0, 3)}, {IP: net.IPv4(127, 0, 0, 4)}})
	resolver := resolverFunc(func(context.Context, string) ([]net.IPAddr, error) {
		lookups.Add(1)
		return ips.Load().([]net.IPAddr), nil
	})
	c, err := New(Config{Address: "https://admin.test:" + port, CACertPEM: root.CertPEM(), Resolver: resolver, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on 127.0.0.3 and .4 at the server's port: the
	// server holds it on 127.0.0.1, which no wildcard bind can share.
	if _, err := c.Domain(context.Background()); err == nil {
		t.Fatal("Domain succeeded with no admin node at the addresses of the name")
	}
	ips.Store([]net.IPAddr{{IP: net.IPv4(127, 0, 0, 3)}, {IP: net.IPv4(127, 0, 0, 1)}})
	for range 3 {
		if _, err := c.Domain(context.Background()); err != nil {
			t.Fatalf("Domain after the name moved: %v", err)
		}
	}
	if got := lookups.Load(); got != 2 {
		t.Errorf("the name was looked up %d times, want 2: at the first request and after every address failed", got)
	}
}
