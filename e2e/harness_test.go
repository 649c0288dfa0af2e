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

// freeAddr returns a loopback address with a port nobody listens on, and
// that no other call of this test process has returned: the kernel may
// hand a just-released port out again at once, and two addresses of one
// gateway (traffic and status) must differ.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if handOut(addr) {
			return addr
		}
	}
	t.Fatal("no loopback port that was not handed out already")
	return ""
}

var (
	handedOutMu sync.Mutex
	handedOut   = map[string]bool{}
)

// handOut records addr as given to a test; false if it was already.
func handOut(addr string) bool {
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	if handedOut[addr] {
		return false
	}
	handedOut[addr] = true
	return true
}

// deadAddr returns a loopback address that refuses connections for the whole
// test: its port is bound but never listened on, so no other listener of a
// parallel test or process can take it over the way a released port can be.
func deadAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
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
	listen string // traffic address, for gateways
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

// startGateway starts a gateway and waits until its status port answers.
func startGateway(t *testing.T, o gatewayOpts) *proc {
	t.Helper()
	listen, status := freeAddr(t), freeAddr(t)
	args := []string{"gateway", "--listen", listen, "--status-listen", status,
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
	if !o.tls {
		args = append(args, "--tls-listen", "")
	}
	args = append(args, o.extra...)
	p := start(t, args...)
	p.listen, p.status = listen, status
	p.waitFor(t, 10*time.Second, "status port", func() bool {
		resp, err := http.Get("http://" + status + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// forEachEngine runs a test once per engine of the HTTP listener, since
// both must behave the same.
func forEachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	for _, engine := range []string{"evloop", "fasthttp"} {
		t.Run(engine, func(t *testing.T) { test(t, engine) })
	}
}

func (p *proc) waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("process exited while waiting for %s: %v\n%s", what, p.err, p.out.String())
		default:
		}
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
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
