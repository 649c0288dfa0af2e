package cli

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitest"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/testaddr"
)

const adminPassword = apitest.Password

const webYAML = `upstreams:
  - name: app
    targets:
      - address: 127.0.0.1:9000
services:
  - name: app
    upstream: app
    routes:
      - name: all
        paths: ["/*"]
`

// TestFlow runs the commands of a first session against the real API:
// login by fingerprint, a group, its configuration, a deployment, logout.
func TestFlow(t *testing.T) {
	hs, root := apitest.AdminNode(t)
	dir := t.TempDir()
	configPath := filepath.Join(dir, "config", "cli.json")
	vars := map[string]string{envConfig: configPath}
	step := func(stdin string, args ...string) (string, string) {
		t.Helper()
		out, errOut, err := run(t, testEnv(vars, stdin), args...)
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out, errOut
	}
	fail := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := run(t, testEnv(vars, ""), args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("gatehouse %s: error %v, want %q\n%s%s", strings.Join(args, " "), err, want, out, errOut)
		}
	}

	fail("no certificate of the server's chain has the fingerprint",
		"login", "--addr", hs.URL, "--ca-fingerprint", newCAFingerprint(t), "--password-stdin")
	out, _ := step(adminPassword+"\n", "login", "--addr", hs.URL, "--ca-fingerprint", root.Fingerprint(), "--password-stdin")
	if !strings.Contains(out, "Logged in to domain test at "+hs.URL+" as admin") {
		t.Errorf("login said %q", out)
	}
	saved := readSaved(t, configPath)
	if saved.Address != hs.URL || saved.User != "admin" || !strings.HasPrefix(saved.Token, "gh_") || saved.CACert != string(root.CertPEM()) {
		t.Errorf("saved login %+v", saved)
	}
	if fi, err := os.Stat(configPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config file: %v, %v", fi.Mode(), err)
	}

	if out, _ := step("", "whoami"); !strings.Contains(out, "User:") || !strings.Contains(out, "admin") {
		t.Errorf("whoami said %q", out)
	}
	step("", "group", "create", "web", "--label", "env=prod")
	if out, _ := step("", "group", "update", "web", "--label", "team=a", "--remove-label", "env", "--description", "public"); !strings.Contains(out, "team=a") || strings.Contains(out, "env=prod") {
		t.Errorf("group update said %q", out)
	}

	file := filepath.Join(dir, "web.yaml")
	writeFile(t, file, strings.Replace(webYAML, `["/*"]`, "/*", 1))
	fail("services[0].routes[0].paths: must be a list", "config", "apply", "-f", file, "--group", "web")
	writeFile(t, file, webYAML)
	if out, _ := step("", "config", "apply", "-f", file, "--group", "web"); !strings.Contains(out, "Applied "+file+" to the draft of group web") {
		t.Errorf("config apply said %q", out)
	}
	if out, _ := step("", "config", "validate", "--group", "web"); !strings.Contains(out, "is valid: sha256:") {
		t.Errorf("config validate said %q", out)
	}
	if out, _ := step("", "deploy", "--group", "web", "-m", "first"); !strings.HasPrefix(out, "deployed web #1 sha256:") ||
		!strings.HasSuffix(out, "\ngroup web has no instances: nothing to roll out\n") {
		t.Errorf("deploy said %q", out)
	}
	if out, _ := step("", "deploy", "--group", "web", "-m", "again"); !strings.HasPrefix(out, "nothing to deploy: ") || !strings.Contains(out, "deployment 1 runs") {
		t.Errorf("deploy of the unchanged draft said %q", out)
	}
	out, _ = step("", "deploy", "--group", "web", "-m", "again", "-o", "json")
	var nothing struct {
		Deployed bool   `json:"deployed"`
		Reason   string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(out), &nothing); err != nil || nothing.Deployed || !strings.Contains(nothing.Reason, "nothing to deploy") {
		t.Errorf("deploy -o json of the unchanged draft = %s (%v)", out, err)
	}
	fail("--timeout must be positive", "deploy", "--group", "web", "-m", "x", "--timeout", "0s")
	out, _ = step("", "deployments", "--group", "web", "-o", "json")
	var deps []apitypes.Deployment
	if err := json.Unmarshal([]byte(out), &deps); err != nil || len(deps) != 1 || deps[0].Message != "first" {
		t.Errorf("deployments -o json = %s (%v)", out, err)
	}
	out, _ = step("", "config", "dump", "--group", "web", "--deployment", "latest")
	dumped, err := deploy.Decode([]byte(out))
	if err != nil {
		t.Fatalf("config dump printed %q: %v", out, err)
	}
	want, _ := mustDecode(t, webYAML).Checksum()
	if got, _ := dumped.Checksum(); got != want {
		t.Errorf("config dump printed another configuration:\n%s", out)
	}
	if out, _ := step("", "diff", "--group", "web"); out != "No changes from 1 to draft.\n" {
		t.Errorf("diff said %q", out)
	}

	out, errOut := step("", "token", "create", "--name", "ci", "--ttl", "1h")
	if !strings.HasPrefix(out, "gh_") || !strings.Contains(errOut, "shown this once") {
		t.Errorf("token create said %q and %q", out, errOut)
	}
	// The new token works from the environment, over the saved CA.
	vars[envToken] = strings.TrimSpace(out)
	step("", "group", "list")
	delete(vars, envToken)

	out, errOut = step("", "token", "create", "--host", "web-1", "--ttl", "30m")
	if !strings.HasPrefix(out, "gh_") || !strings.Contains(errOut, "gatehouse node join --addr "+hs.URL) ||
		!strings.Contains(errOut, "--ca-fingerprint SHA256:") {
		t.Errorf("join token create said %q and %q", out, errOut)
	}
	fail("--name and --user do not apply", "token", "create", "--host", "web-1", "--name", "x")

	step("", "logout")
	if saved := readSaved(t, configPath); saved.Token != "" || saved.Address != hs.URL || saved.CACert == "" {
		t.Errorf("after logout the file holds %+v", saved)
	}
	fail("not logged in", "group", "list")
}

func newCAFingerprint(t *testing.T) string {
	t.Helper()
	other, err := ca.New("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return other.Fingerprint()
}

func readSaved(t *testing.T, path string) savedLogin {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var l savedLogin
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func mustDecode(t *testing.T, doc string) *deploy.Config {
	t.Helper()
	cfg, err := deploy.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// config apply says what to do when the draft changed under it.
func TestApplyConflict(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/validate") {
			_, _ = io.WriteString(w, `{"valid":true,"checksum":"sha256:00","errors":[]}`)
			return
		}
		if r.Method == http.MethodGet {
			w.Header().Set("ETag", `"4"`)
			_, _ = io.WriteString(w, `{"group":"web","version":4,"config":{}}`)
			return
		}
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":{"code":"conflict","message":"draft is at version 5, not 4"}}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	file := filepath.Join(dir, "web.yaml")
	writeFile(t, file, webYAML)
	vars := map[string]string{envConfig: filepath.Join(dir, "cli.json"), envAddr: srv.URL, envToken: "gh_x_y", envCACert: caFile}
	_, _, err := run(t, testEnv(vars, ""), "config", "apply", "-f", file, "--group", "web")
	want := "the draft of group web changed while " + file + " was being applied (another edit happened); nothing was applied, run the command again"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

// TestLoginSeveralAddresses: a login to a list of admin nodes whose first
// is down reaches the second, saves the list, and later commands use it.
func TestLoginSeveralAddresses(t *testing.T) {
	hs, root := apitest.AdminNode(t)
	list := "https://" + testaddr.Dead(t) + "," + hs.URL
	configPath := filepath.Join(t.TempDir(), "cli.json")
	vars := map[string]string{envConfig: configPath}
	if out, errOut, err := run(t, testEnv(vars, adminPassword+"\n"), "login", "--addr", list, "--ca-fingerprint", root.Fingerprint(), "--password-stdin"); err != nil {
		t.Fatalf("login: %v\n%s%s", err, out, errOut)
	}
	if saved := readSaved(t, configPath); saved.Address != list || !strings.HasPrefix(saved.Token, "gh_") {
		t.Fatalf("saved login %+v, want the address list %s and a token", saved, list)
	}
	out, errOut, err := run(t, testEnv(vars, ""), "whoami")
	if err != nil || !strings.Contains(out, "admin") {
		t.Fatalf("whoami with the saved list: %v\n%s%s", err, out, errOut)
	}
}
