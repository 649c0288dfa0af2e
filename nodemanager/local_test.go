package nodemanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/nodemanager/state"
)

// restartRecorder is a supervisor that remembers the restarts asked of it.
type restartRecorder struct {
	fakeSupervisor
	mu       sync.Mutex
	restarts []string
}

func (r *restartRecorder) Restart(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restarts = append(r.restarts, name)
	return nil
}

func (r *restartRecorder) taken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.restarts
	r.restarts = nil
	return out
}

const testOperatorToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// localAPIUnderTest serves the local API of an agent with one desired
// instance, web-1, and returns its URL, the instance's secret and the
// supervisor.
func localAPIUnderTest(t *testing.T) (string, string, *restartRecorder) {
	t.Helper()
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	if err := st.PutInstances(1, []apitypes.AgentInstance{{Name: "web-1", Group: "web", StatusListen: "127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	secret, err := st.Secret("web-1")
	if err != nil {
		t.Fatal(err)
	}
	sup := &restartRecorder{}
	a := &agent{log: hclog.NewNullLogger(), state: st, sup: sup, now: time.Now, changed: newBroadcast(),
		kick: make(chan struct{}, 1), reports: map[string]report{}, stopping: make(chan struct{}), localToken: testOperatorToken}
	a.traffic, _ = newTestCollector(t, st, newFakeAdmin(), state.SpoolLimits{}, a.trafficTargets)
	srv := httptest.NewServer(a.localHandler(prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	return srv.URL, secret, sup
}

// TestLocalAPIAccess: every route of the local API against every kind of
// caller. Reads stay open to local callers, the gateways' calls want their
// instance's secret, restart wants the operator token, and nothing is
// served to a web page (Origin) or through a foreign name (Host).
func TestLocalAPIAccess(t *testing.T) {
	base, secret, sup := localAPIUnderTest(t)
	var pushes uint64
	type route struct {
		name   string
		method string
		path   string
		body   func() []byte
		// who may call it: "anyone", "instance" or "operator".
		needs string
		ok    int
	}
	routes := []route{
		{"healthz", "GET", "/healthz", nil, "anyone", 200},
		{"metrics", "GET", "/metrics", nil, "anyone", 200},
		{"instances", "GET", "/v1/instances", nil, "anyone", 200},
		{"deployment", "GET", "/v1/deployment?instance=web-1", nil, "instance", 200},
		{"report", "PUT", "/v1/instances/web-1/report", func() []byte { return []byte(`{"ready":true}`) }, "instance", 204},
		{"traffic", "PUT", "/v1/instances/web-1/traffic", func() []byte {
			pushes++
			b, _ := json.Marshal(snapshot("web", "web-1", "a", pushes))
			return b
		}, "instance", 204},
		{"restart", "POST", "/v1/instances/web-1/restart", nil, "operator", 202},
	}
	type caller struct {
		name string
		// auth is the Authorization header.
		auth   string
		host   string
		origin string
		// is says which credential the caller holds.
		is string
	}
	callers := []caller{
		{name: "no credential", is: "anyone"},
		{name: "wrong token", auth: "Bearer " + strings.Repeat("0", 64), is: "anyone"},
		{name: "operator token without Bearer", auth: testOperatorToken, is: "anyone"},
		{name: "instance secret", auth: "Bearer " + secret, is: "instance"},
		{name: "operator token", auth: "Bearer " + testOperatorToken, is: "operator"},
		{name: "operator token, Host localhost", auth: "Bearer " + testOperatorToken, host: "localhost:8091", is: "operator"},
		{name: "operator token, Host [::1]", auth: "Bearer " + testOperatorToken, host: "[::1]:8091", is: "operator"},
		{name: "operator token, Host 127.0.0.2 without port", auth: "Bearer " + testOperatorToken, host: "127.0.0.2", is: "operator"},
		{name: "operator token, foreign Host", auth: "Bearer " + testOperatorToken, host: "rebound.example:8091", is: "forbidden"},
		{name: "operator token, Host 0.0.0.0", auth: "Bearer " + testOperatorToken, host: "0.0.0.0:8091", is: "forbidden"},
		{name: "operator token, Host localhost.example", auth: "Bearer " + testOperatorToken, host: "localhost.example", is: "forbidden"},
		{name: "instance secret, foreign Host", auth: "Bearer " + secret, host: "rebound.example", is: "forbidden"},
		{name: "operator token, Origin", auth: "Bearer " + testOperatorToken, origin: "https://evil.example", is: "forbidden"},
		{name: "operator token, Origin null", auth: "Bearer " + testOperatorToken, origin: "null", is: "forbidden"},
		{name: "operator token, Origin of the API itself", auth: "Bearer " + testOperatorToken, origin: base, is: "forbidden"},
		{name: "instance secret, Origin", auth: "Bearer " + secret, origin: "https://evil.example", is: "forbidden"},
		{name: "no credential, Origin", origin: "https://evil.example", is: "forbidden"},
	}
	for _, r := range routes {
		for _, c := range callers {
			t.Run(r.name+"/"+c.name, func(t *testing.T) {
				var body io.Reader
				if r.body != nil {
					body = bytes.NewReader(r.body())
				}
				req, err := http.NewRequest(r.method, base+r.path, body)
				if err != nil {
					t.Fatal(err)
				}
				if c.auth != "" {
					req.Header.Set("Authorization", c.auth)
				}
				if c.host != "" {
					req.Host = c.host
				}
				if c.origin != "" {
					req.Header.Set("Origin", c.origin)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := r.ok
				switch {
				case c.is == "forbidden":
					want = http.StatusForbidden
				case r.needs != "anyone" && r.needs != c.is:
					want = http.StatusUnauthorized
				}
				if resp.StatusCode != want {
					t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, resp.StatusCode, data, want)
				}
				if want >= 400 {
					var eb localapi.ErrorBody
					if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
						t.Errorf("error body %q is not the API's error shape", data)
					}
				}
				if want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" && r.needs == "operator" {
					t.Error("401 without WWW-Authenticate")
				}
				restarted := sup.taken()
				if wantRestart := r.name == "restart" && want == http.StatusAccepted; wantRestart != slices.Equal(restarted, []string{"web-1"}) {
					t.Errorf("restarts done: %v (answer %d)", restarted, resp.StatusCode)
				}
				for _, s := range []string{secret, testOperatorToken} {
					if strings.Contains(string(data), s) {
						t.Errorf("the answer shows a secret: %s", data)
					}
				}
			})
		}
	}
}

// The read-only routes open to every local user show no secret, whatever
// the gateways reported.
func TestLocalReadsShowNoSecret(t *testing.T) {
	base, secret, _ := localAPIUnderTest(t)
	req, _ := http.NewRequest("PUT", base+"/v1/instances/web-1/report", strings.NewReader(`{"ready":true,"applied_deployment":3}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, path := range []string{"/healthz", "/metrics", "/v1/instances"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		if path == "/v1/instances" && !strings.Contains(string(data), `"applied_deployment":3`) {
			t.Fatalf("GET %s does not show the report: %s", path, data)
		}
		for _, s := range []string{secret, testOperatorToken} {
			if strings.Contains(string(data), s) {
				t.Errorf("GET %s shows a secret: %s", path, data)
			}
		}
	}
}

// A node manager without a token (one built without Run) restarts nothing,
// whatever the caller sends.
func TestLocalRestartWithoutTokenRefusesAll(t *testing.T) {
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	sup := &restartRecorder{}
	a := &agent{log: hclog.NewNullLogger(), state: st, sup: sup}
	srv := httptest.NewServer(a.localHandler(prometheus.NewRegistry()))
	defer srv.Close()
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/instances/web-1/restart", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, resp.StatusCode)
		}
	}
	if got := sup.taken(); len(got) != 0 {
		t.Errorf("restarted %v", got)
	}
}

func TestLoopbackHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:8091", true},
		{"127.0.0.1", true},
		{"127.1.2.3:80", true},
		{"localhost", true},
		{"LocalHost:8091", true},
		{"[::1]:8091", true},
		{"[::1]", true},
		{"::1", true},
		{"[::ffff:127.0.0.1]:8091", true},
		{"", false},
		{"0.0.0.0:8091", false},
		{"10.0.0.1:8091", false},
		{"[::]:8091", false},
		{"[fe80::1%lo]:8091", false},
		{"localhost.:8091", false},
		{"localhost.evil.example", false},
		{"127.0.0.1.nip.io:8091", false},
		{"rebound.example:8091", false},
		{"127.1:8091", false},
	}
	for _, tt := range tests {
		if got := loopbackHost(tt.host); got != tt.want {
			t.Errorf("loopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestLoadLocalToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, localapi.TokenFile)
	tok, created, err := loadLocalToken(dir)
	if err != nil || !created {
		t.Fatalf("first load: %v, created %v", err, created)
	}
	if len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("token is not 64 hex digits: %d characters", len(tok))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o, want 0600", fi.Mode().Perm())
	}
	again, created, err := loadLocalToken(dir)
	if err != nil || created || again != tok {
		t.Fatalf("second load: %v, created %v, same token %v", err, created, again == tok)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	other, _, err := loadLocalToken(t.TempDir())
	if err != nil || other == tok {
		t.Fatalf("another data dir: %v, same token %v", err, other == tok)
	}

	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantErr string
	}{
		{"readable by others", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(testOperatorToken+"\n"), 0o600)
			os.Chmod(path, 0o644)
		}, "mode 0644"},
		{"writable by the group", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(testOperatorToken), 0o600)
			os.Chmod(path, 0o620)
		}, "chmod 600"},
		{"not hex", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(strings.Repeat("z", 64)), 0o600)
		}, "want 64 hex digits"},
		{"too short", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("abcd"), 0o600)
		}, "want 64 hex digits"},
		{"empty", func(t *testing.T, path string) {
			os.WriteFile(path, nil, 0o600)
		}, "want 64 hex digits"},
		{"a symbolic link", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			os.WriteFile(target, []byte(testOperatorToken), 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, localapi.TokenFile)
			tt.setup(t, path)
			_, _, err := loadLocalToken(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, path, tt.wantErr)
			}
			if strings.Contains(err.Error(), testOperatorToken) {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
	// A token written by hand, owner-only, is used as it is.
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, localapi.TokenFile), []byte(fmt.Sprintf("  %s\n", testOperatorToken)), 0o400); err != nil {
		t.Fatal(err)
	}
	if got, created, err := loadLocalToken(dir); err != nil || created || got != testOperatorToken {
		t.Fatalf("hand-written token: %v, created %v, same %v", err, created, got == testOperatorToken)
	}
}
