package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// The node manager's local API is reachable by every local user and by
// every web page the host's browser opens (docs/node-manager.md): these
// tests check that nothing but the operator token restarts a gateway, and
// that nothing is served to a web page or through a rebound name.

// localRequest sends one request to the node manager's local API as raw
// bytes, so that the Host and Origin headers are exactly the test's, and
// returns the status and body.
func localRequest(t *testing.T, addr, method, path string, headers ...string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, path)
	hasHost := false
	for _, h := range headers {
		hasHost = hasHost || strings.HasPrefix(strings.ToLower(h), "host:")
		b.WriteString(h + "\r\n")
	}
	if !hasHost {
		b.WriteString("Host: " + addr + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\nConnection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// instanceSecret reads a gateway's secret from its environment, as any
// process of the same user can.
func instanceSecret(t *testing.T, pid int) string {
	t.Helper()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, localapi.EnvInstanceSecret+"="); ok {
			return v
		}
	}
	t.Fatalf("gateway %d has no %s", pid, localapi.EnvInstanceSecret)
	return ""
}

// readLocalToken reads the operator token the node manager made in its
// data dir, checking that only its owner may read it.
func readLocalToken(t *testing.T, nodeDir string) string {
	t.Helper()
	path := filepath.Join(nodeDir, localapi.TokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the node manager made no operator token: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(data))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok) {
		t.Fatalf("%s does not hold 64 hex digits", path)
	}
	return tok
}

// TestNodeLocalAPILocked: restarting a gateway through the local API needs
// the operator token from the data dir; no credential, a wrong one or a
// gateway's own secret is 401, a web page (Origin) or a rebound name (Host)
// is 403, and none of them restarts anything. With the token the gateway
// restarts: a new pid, one more restart, serving again.
func TestNodeLocalAPILocked(t *testing.T) {
	began := time.Now()
	up := startUpstream(t, "u1", nil)
	d := setUpNode(t, up, "gw-a")
	old := d.waitLocal(t, "gw-a running", d.appliedEverywhere(1))["gw-a"]
	token := readLocalToken(t, d.nodeDir)
	if strings.Contains(d.node.out.String(), token) {
		t.Error("the node manager's output shows its operator token")
	}
	_, port, _ := net.SplitHostPort(d.nodeAddr)
	restart := "/v1/instances/gw-a/restart"
	bearer := "Authorization: Bearer " + token

	refused := []struct {
		name    string
		method  string
		path    string
		headers []string
		want    int
	}{
		{"restart without a credential", "POST", restart, nil, http.StatusUnauthorized},
		{"restart with a wrong token", "POST", restart, []string{"Authorization: Bearer " + strings.Repeat("0", 64)}, http.StatusUnauthorized},
		{"restart with the token not as a bearer token", "POST", restart, []string{"Authorization: " + token}, http.StatusUnauthorized},
		{"restart with the gateway's own secret", "POST", restart, []string{"Authorization: Bearer " + instanceSecret(t, old.PID)}, http.StatusUnauthorized},
		{"a cross-site form post", "POST", restart, []string{"Origin: http://evil.example", "Content-Type: text/plain"}, http.StatusForbidden},
		{"restart with the token and an Origin", "POST", restart, []string{bearer, "Origin: http://evil.example"}, http.StatusForbidden},
		{"restart with the token and Origin null", "POST", restart, []string{bearer, "Origin: null"}, http.StatusForbidden},
		{"restart with the token through a rebound name", "POST", restart, []string{bearer, "Host: rebound.example:" + port}, http.StatusForbidden},
		{"restart with the token and Host 0.0.0.0", "POST", restart, []string{bearer, "Host: 0.0.0.0:" + port}, http.StatusForbidden},
		{"instance list read by a web page", "GET", localapi.PathInstances, []string{"Origin: http://evil.example"}, http.StatusForbidden},
		{"instance list read through a rebound name", "GET", localapi.PathInstances, []string{"Host: rebound.example:" + port}, http.StatusForbidden},
	}
	for _, r := range refused {
		code, body := localRequest(t, d.nodeAddr, r.method, r.path, r.headers...)
		if code != r.want || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s, want %d with an error body", r.name, code, strings.TrimSpace(body), r.want)
		}
		if strings.Contains(body, token) {
			t.Errorf("%s: the answer shows the token", r.name)
		}
	}
	if code, body := localRequest(t, d.nodeAddr, "GET", localapi.PathInstances); code != http.StatusOK || strings.Contains(body, token) {
		t.Errorf("GET /v1/instances from a local user: %d %s, want 200 without the token", code, body)
	}

	code, body := localRequest(t, d.nodeAddr, "POST", restart, bearer, "Host: localhost:"+port)
	if code != http.StatusAccepted {
		t.Fatalf("restart with the operator token: %d %s, want 202", code, body)
	}
	now := d.waitLocal(t, "gw-a restarted with a new pid", func(v map[string]localapi.InstanceView) bool {
		in := v["gw-a"]
		return in.PID != 0 && in.PID != old.PID && in.Process == localapi.ProcessRunning && in.Ready && freshlyReported(in)
	})["gw-a"]
	// One restart: the refused requests restarted nothing.
	if now.Restarts != old.Restarts+1 {
		t.Errorf("gw-a restarts went from %d to %d, want one more", old.Restarts, now.Restarts)
	}
	if alive(old.PID) {
		t.Errorf("the restarted gateway %d still runs", old.PID)
	}
	d.mustRouteTo(t, "u1", "gw-a")

	// The token outlives the node manager: scripts keep working.
	d.node.signal(syscall.SIGTERM)
	d.node.exit(t, 15*time.Second)
	d.startNode(t)
	if again := readLocalToken(t, d.nodeDir); again != token {
		t.Error("the node manager made a new operator token on its restart")
	}
	if code, body := localRequest(t, d.nodeAddr, "POST", "/v1/instances/gw-none/restart", bearer); code != http.StatusNotFound {
		t.Errorf("restart of an unknown instance with the token after the node manager's restart: %d %s, want 404", code, body)
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// TestNodeLocalAPIRefusesBadToken: a token file others may read, or one
// that is not a token, stops the node manager at start with an error
// naming the file; a non-loopback --listen is refused too.
func TestNodeLocalAPIRefusesBadToken(t *testing.T) {
	d := newNMDomain(t)
	d.joinNode(t)
	path := filepath.Join(d.nodeDir, localapi.TokenFile)
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		listen  string
		want    string
	}{
		{"readable by others", strings.Repeat("ab", 32), 0o644, d.nodeAddr, "chmod 600 " + path},
		{"not a token", "hunter2", 0o600, d.nodeAddr, path + ": want 64 hex digits"},
		{"listen on every address", "", 0, "0.0.0.0:" + strings.Split(d.nodeAddr, ":")[1], "must be a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(path)
			if tt.content != "" {
				writeFile(t, path, tt.content)
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			p := start(t, "node", "run", "--data-dir", d.nodeDir, "--listen", tt.listen)
			if code := p.exit(t, 10*time.Second); code == 0 || !strings.Contains(p.out.String(), tt.want) {
				t.Fatalf("node run: exit %d, output %q, want an error saying %q", code, p.out.String(), tt.want)
			}
			if tt.content != "" && strings.Contains(p.out.String(), tt.content) {
				t.Error("the error shows the file's content")
			}
		})
	}
}
