package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/readyfile"
	"github.com/gatehouse/gatehouse/internal/testaddr"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// binary is the gatehouse binary built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "gatehouse")
	build := exec.Command("go", "build", "-o", binary, "github.com/gatehouse/gatehouse/cmd/gatehouse")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build gatehouse:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address reserved for the test: its port is
// bound (with SO_REUSEADDR) but never listened on, until the test ends.
// The kernel hands a bound port to no other bind to port 0 nor to any
// outgoing connection, so no other test or process can take it; a process
// the test starts binds it all the same (Go's listeners set SO_REUSEADDR)
// and, after a restart, binds it again. Tests use it where an address must
// be known before the process starts or survive its restart: the admin
// node and node managers that tests restart, and the instances declared in
// the admin node, which the node manager passes to the gateways it starts.
// Anything else binds 127.0.0.1:0 and reports the port in its ready file.
func freeAddr(t *testing.T) string {
	t.Helper()
	return reserveAddr(t, "127.0.0.1")
}

// reserveAddr is freeAddr on the IPv4 address ip.
func reserveAddr(t *testing.T, ip string) string {
	t.Helper()
	return testaddr.Reserved(t, ip)
}

// deadAddr returns a loopback address that refuses connections for the
// whole test.
func deadAddr(t *testing.T) string {
	t.Helper()
	return testaddr.Dead(t)
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running gatehouse process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	err    error
	status string // status address, for gateways
	listen string // traffic address, for gateways; the API's, for admin nodes and node managers
	tls    string // HTTPS traffic address, for gateways serving it
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary, args...))
}

// startCmd is start for a command the caller made: with its own
// environment, or run through a wrapper.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, out: &syncBuffer{}, done: make(chan struct{}), cmd: cmd}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(p.cmd.Args, " "), p.out.String())
		}
	})
	return p
}

// gatewayOpts are the usual flags of a test gateway.
type gatewayOpts struct {
	engine  string // empty: the default
	config  string
	dataDir string
	tls     bool
	extra   []string
}

// startGateway starts a gateway on ports of its own choosing (127.0.0.1:0,
// unless o.extra names addresses) and waits until its status port answers.
func startGateway(t *testing.T, o gatewayOpts) *proc {
	t.Helper()
	args := []string{"gateway", "--listen", "127.0.0.1:0", "--status-listen", "127.0.0.1:0",
		"--watch-interval", "100ms", "--drain-timeout", "10s", "--log-level", "debug"}
	if o.config != "" {
		args = append(args, "--config", o.config)
	}
	if o.dataDir != "" {
		args = append(args, "--data-dir", o.dataDir)
	}
	if o.engine != "" {
		args = append(args, "--engine", o.engine)
	}
	if o.tls {
		args = append(args, "--tls-listen", "127.0.0.1:0")
	} else {
		args = append(args, "--tls-listen", "")
	}
	args = append(args, o.extra...)
	p, addrs := startReady(t, args...)
	p.listen, p.status, p.tls = addrs["listen"], addrs["status_listen"], addrs["tls_listen"]
	p.waitFor(t, 10*time.Second, "status port", func() bool {
		resp, err := http.Get("http://" + p.status + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// startReady starts a gatehouse process with --ready-file and waits for
// the file: the addresses the process bound, by name.
func startReady(t *testing.T, args ...string) (*proc, readyfile.Addrs) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ready.json")
	p := start(t, append(args, "--ready-file", path)...)
	return p, p.waitReadyFile(t, path)
}

// waitReadyFile waits for the process's ready file at path and returns
// the addresses it names.
func (p *proc) waitReadyFile(t *testing.T, path string) readyfile.Addrs {
	t.Helper()
	var addrs readyfile.Addrs
	p.waitState(t, 20*time.Second, "the ready file "+path, func() (bool, string) {
		a, err := readyfile.Read(path)
		if err != nil {
			return false, err.Error()
		}
		addrs = a
		return true, ""
	})
	return addrs
}

// forEachEngine runs a test once per engine of the HTTP listener, since
// both must behave the same.
func forEachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	for _, engine := range []string{"evloop", "fasthttp"} {
		t.Run(engine, func(t *testing.T) { test(t, engine) })
	}
}

// waitFor waits until ok holds, failing at once if the process exits.
func (p *proc) waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	p.waitState(t, d, what, func() (bool, string) { return ok(), "" })
}

// waitState is waitFor for a condition that describes the state it saw,
// which the failure on timeout shows.
func (p *proc) waitState(t *testing.T, d time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	waitfor.Cond(t, d, what, func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("process exited while waiting for %s: %v\n%s", what, p.err, p.out.String())
		default:
		}
		return check()
	})
}

// exit waits for the process to end and returns its exit code.
func (p *proc) exit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("process still running after %s", d)
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// statusReport is the part of /status the tests read.
type statusReport struct {
	Ready         bool `json:"ready"`
	Configuration *struct {
		Checksum string `json:"checksum"`
		Origin   string `json:"origin"`
		Routes   int    `json:"routes"`
	} `json:"configuration"`
	LastError *struct {
		Message string `json:"message"`
	} `json:"last_error"`
	Store struct {
		SetAside string `json:"set_aside"`
	} `json:"store"`
	Upstreams []struct {
		Name    string `json:"name"`
		Targets []struct {
			Address string `json:"address"`
			Healthy bool   `json:"healthy"`
			Ejected bool   `json:"ejected"`
		} `json:"targets"`
	} `json:"upstreams"`
}

func (p *proc) report(t *testing.T) statusReport {
	t.Helper()
	resp, err := http.Get("http://" + p.status + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r statusReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	p.waitFor(t, 10*time.Second, "readiness", func() bool {
		resp, err := http.Get("http://" + p.status + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// waitChecksum waits until the gateway serves a configuration other than
// old (or any configuration when old is empty), and returns its checksum.
func (p *proc) waitNewConfig(t *testing.T, old string) string {
	t.Helper()
	var sum string
	p.waitFor(t, 10*time.Second, "a new configuration", func() bool {
		r := p.report(t)
		if r.Configuration != nil && r.Configuration.Checksum != old {
			sum = r.Configuration.Checksum
			return true
		}
		return false
	})
	return sum
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Rename, as editors and deploy tools do, so that the gateway never
	// reads a half-written file.
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// get sends a GET through the gateway and returns status and body.
func get(t *testing.T, client *http.Client, url string, headers ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// upstream is an HTTP server on loopback standing for an API behind the
// gateway; it names itself in a header so tests see which target answered.
type upstream struct {
	name string
	srv  *http.Server
	addr string
}

func startUpstream(t *testing.T, name string, h http.HandlerFunc) *upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{name: name, addr: l.Addr().String()}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%s %s %s", name, r.Method, r.URL.RequestURI())
		}
	}
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		h(w, r)
	})}
	go u.srv.Serve(l)
	t.Cleanup(func() { u.srv.Close() })
	return u
}
