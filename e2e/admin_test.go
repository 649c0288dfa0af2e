package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
)

// The secret of the consumer in v1, which must never come back out of the
// admin node: not in a dump, a diff, an audit entry, nor a log line.
const adminE2ESecret = "s3cret-e2e-key"

// adminBadYAML has two errors a person makes: a route path without its
// leading "/" and a service naming an upstream that does not exist.
const adminBadYAML = `upstreams:
  - name: ledger
    targets:
      - address: 127.0.0.1:9001
services:
  - name: payments
    upstream: ledgr
    routes:
      - name: pay
        paths: [api/pay]
`

const adminV1YAML = `upstreams:
  - name: ledger
    targets:
      - address: 127.0.0.1:9001
services:
  - name: payments
    upstream: ledger
    routes:
      - name: pay
        paths: [/api/*]
consumers:
  - name: shop
    credentials:
      - type: key
        key: ` + adminE2ESecret + `
`

// adminCLI runs the gatehouse command-line client as one person would:
// with a HOME and a CLI configuration file of their own, and nothing of
// the real environment's GATEHOUSE_* variables.
type adminCLI struct {
	home, config string
	// transcript collects everything every command printed, to look for
	// secrets in at the end.
	transcript *transcript
}

type transcript struct {
	mu  sync.Mutex
	all []string
}

func (tr *transcript) add(s string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.all = append(tr.all, s)
}

func (tr *transcript) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.all = nil
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.all, "\n")
}

func newAdminCLI(t *testing.T, tr *transcript) *adminCLI {
	t.Helper()
	home := t.TempDir()
	return &adminCLI{home: home, config: filepath.Join(home, "gh", "cli.json"), transcript: tr}
}

func (c *adminCLI) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GATEHOUSE_") || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+c.home, "GATEHOUSE_CONFIG="+c.config)
}

// run runs one command with stdin and returns what it printed and its
// exit code.
func (c *adminCLI) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = c.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("gatehouse %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %s: timed out\n%s%s", strings.Join(args, " "), o.String(), e.String())
	}
	c.transcript.add(fmt.Sprintf("$ gatehouse %s\n%s%s", strings.Join(args, " "), o.String(), e.String()))
	return o.String(), e.String(), code
}

// ok runs a command that must succeed and returns its standard output.
func (c *adminCLI) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := c.run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fail runs a command that must fail with exit status 1 and a
// "gatehouse: " error on stderr.
func (c *adminCLI) fail(t *testing.T, stdin string, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := c.run(t, stdin, args...)
	if code != 1 {
		t.Fatalf("gatehouse %s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	if !strings.HasPrefix(errOut, "gatehouse: ") {
		t.Errorf("gatehouse %s: stderr does not start with \"gatehouse: \":\n%s", strings.Join(args, " "), errOut)
	}
	return out, errOut
}

// json runs a command with -o json and decodes its output into v,
// strictly: the CLI prints the API's types, with nothing else.
func (c *adminCLI) json(t *testing.T, v any, args ...string) {
	t.Helper()
	out := c.ok(t, "", append(args, "-o", "json")...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("gatehouse %s -o json: decode: %v\n%s", strings.Join(args, " "), err, out)
	}
	if dec.More() {
		t.Fatalf("gatehouse %s -o json: more than one JSON value:\n%s", strings.Join(args, " "), out)
	}
}

// savedToken reads the token `gatehouse login` saved.
func (c *adminCLI) saved(t *testing.T) (address, user, token, caCert string) {
	t.Helper()
	data, err := os.ReadFile(c.config)
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Address string `json:"address"`
		User    string `json:"user"`
		Token   string `json:"token"`
		CACert  string `json:"ca_cert"`
	}
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatalf("CLI configuration %s: %v\n%s", c.config, err, data)
	}
	return l.Address, l.User, l.Token, l.CACert
}

// adminAPI is a plain HTTPS client of the admin API, trusting the domain CA
// file, for what the CLI does not do on purpose (a stale If-Match).
type adminAPI struct {
	base, token string
	hc          *http.Client
}

func newAdminAPI(t *testing.T, base, caFile, token string) *adminAPI {
	t.Helper()
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("no certificate in %s", caFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &adminAPI{base: base, token: token, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (a *adminAPI) do(t *testing.T, method, path, body string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+apitypes.Prefix+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, data
}

// draft returns the group's draft and its ETag.
func (a *adminAPI) draft(t *testing.T, group string) (apitypes.Draft, string) {
	t.Helper()
	code, h, body := a.do(t, "GET", "/groups/"+group+"/draft", "")
	if code != http.StatusOK {
		t.Fatalf("GET draft of %s: %d %s", group, code, body)
	}
	var d apitypes.Draft
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("GET draft of %s: %v\n%s", group, err, body)
	}
	etag := h.Get("ETag")
	if want := fmt.Sprintf("%q", fmt.Sprint(d.Version)); etag != want {
		t.Errorf("GET draft of %s: ETag %q, want %s (the version)", group, etag, want)
	}
	return d, etag
}

func apiError(t *testing.T, body []byte) apitypes.Error {
	t.Helper()
	var e apitypes.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body: %v\n%s", err, body)
	}
	return e.Error
}

// startAdminNode runs `gatehouse admin run` on dir at addr and waits for
// its ready file; its ready line must name the domain's CA fingerprint.
// An addr with port 0 lets the node choose, and p.listen says what it
// chose; tests that restart the node on its address pass a freeAddr.
func startAdminNode(t *testing.T, dir, addr, fingerprint string, extra ...string) *proc {
	t.Helper()
	// Debug logs the most there is to look for secrets in.
	p, addrs := startReady(t, append([]string{"admin", "run", "--data-dir", dir, "--listen", addr, "--log-level", "debug"}, extra...)...)
	p.listen = addrs["listen"]
	if _, port, _ := net.SplitHostPort(addr); port != "0" && p.listen != addr {
		t.Errorf("the admin node's ready file names %q, want the address it was given, %s", p.listen, addr)
	}
	if url := addrs["url"]; url != "https://"+p.listen {
		t.Errorf("the admin node's ready file names the URL %q, want https://%s", url, p.listen)
	}
	p.waitFor(t, 10*time.Second, "admin node ready", func() bool {
		return strings.Contains(p.out.String(), "admin node ready")
	})
	if line := readyLine(p.out.String()); !strings.Contains(line, "ca_fingerprint="+fingerprint) ||
		!strings.Contains(line, "url=https://"+p.listen) || !strings.Contains(line, "domain=e2e") {
		t.Errorf("ready line %q: want domain=e2e url=https://%s ca_fingerprint=%s", line, p.listen, fingerprint)
	}
	return p
}

func readyLine(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "admin node ready") {
			return line
		}
	}
	return ""
}

func permOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// readTree reads every file of dir with its mode, to tell whether
// anything changed.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			files[rel+"/"] = fi.Mode().String()
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[rel] = fi.Mode().String() + " " + string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestAdminNodeEndToEnd drives a domain's whole administration through the
// real binary: init, the admin node as a process over HTTPS from the domain
// CA, the CLI for login, groups, instances, drafts, validation, deployments,
// diffs, a rollback and a scoped user, a stale If-Match answered 409, the
// audit log of it all, and a restart that keeps everything.
func TestAdminNodeEndToEnd(t *testing.T) {
	began := time.Now()
	tr := &transcript{}
	work := t.TempDir()
	dataDir := filepath.Join(work, "admin")
	admin := newAdminCLI(t, tr)
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	// 1. init, and init again refused without touching anything.
	initOut := admin.ok(t, "", "admin", "init", "--data-dir", dataDir, "--domain", "e2e")
	m := regexp.MustCompile(`Generated password for admin \(shown once\): (\S+)`).FindStringSubmatch(initOut)
	if m == nil {
		t.Fatalf("admin init printed no generated password:\n%s", initOut)
	}
	password := m[1]
	m = regexp.MustCompile(`Node managers pin this CA: (SHA256:[0-9a-fA-F]{64})\n`).FindStringSubmatch(initOut)
	if m == nil {
		t.Fatalf("admin init printed no CA fingerprint:\n%s", initOut)
	}
	fingerprint := m[1]
	if !strings.Contains(initOut, "Created domain e2e in "+dataDir) {
		t.Errorf("admin init said:\n%s", initOut)
	}
	if len(password) < 12 {
		t.Errorf("generated password %q is shorter than 12 characters", password)
	}
	// The init transcript holds the password by design; it is the one
	// output that may.
	tr.reset()
	if m := permOf(t, dataDir); m != 0o700 {
		t.Errorf("data dir: mode %v, want 0700", m)
	}
	for _, name := range []string{"ca.key", "signing.key", "admin.db"} {
		if m := permOf(t, filepath.Join(dataDir, name)); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, m)
		}
	}
	before := readTree(t, dataDir)
	for _, domain := range []string{"e2e", "other"} {
		out, errOut := admin.fail(t, "", "admin", "init", "--data-dir", dataDir, "--domain", domain)
		if !strings.Contains(errOut, "already holds a domain") || !strings.Contains(errOut, dataDir) {
			t.Errorf("second init (--domain %s): stderr %q, want \"already holds a domain\" naming %s", domain, errOut, dataDir)
		}
		if strings.Contains(out, "Generated password") {
			t.Errorf("second init printed a password:\n%s", out)
		}
	}
	if after := readTree(t, dataDir); !mapsEqual(before, after) {
		t.Errorf("a refused init changed the data dir:\nbefore %v\nafter  %v", keys(before), keys(after))
	}

	// 2. the admin node.
	addr := freeAddr(t)
	url := "https://" + addr
	caFile := filepath.Join(dataDir, "ca.crt")
	node := startAdminNode(t, dataDir, addr, fingerprint)

	var adminToken string
	step("login", func(t *testing.T) {
		wrong := "SHA256:" + strings.Repeat("ab", 32)
		_, errOut := admin.fail(t, password+"\n", "login", "--addr", url, "--ca-fingerprint", wrong, "--user", "admin", "--password-stdin")
		if !strings.Contains(errOut, "no certificate of the server's chain has the fingerprint "+wrong) {
			t.Errorf("login with a wrong fingerprint: %q, want it to say no certificate has the fingerprint %s", errOut, wrong)
		}
		if _, err := os.Stat(admin.config); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused login wrote %s: %v", admin.config, err)
		}
		// The system roots do not know the domain CA.
		_, errOut = admin.fail(t, password+"\n", "login", "--addr", url, "--password-stdin")
		if !strings.Contains(errOut, "--ca-fingerprint") {
			t.Errorf("login without a CA: %q, want a hint at --ca-fingerprint", errOut)
		}
		_, errOut = admin.fail(t, "not-the-password\n", "login", "--addr", url, "--ca-fingerprint", fingerprint, "--password-stdin")
		if !strings.Contains(errOut, "unauthorized") {
			t.Errorf("login with a wrong password: %q, want unauthorized", errOut)
		}

		out := admin.ok(t, password+"\n", "login", "--addr", url, "--ca-fingerprint", fingerprint, "--user", "admin", "--password-stdin")
		if !strings.Contains(out, "Logged in to domain e2e at "+url+" as admin") || !strings.Contains(out, admin.config) {
			t.Errorf("login said %q", out)
		}
		if m := permOf(t, admin.config); m != 0o600 {
			t.Errorf("CLI configuration: mode %v, want 0600", m)
		}
		savedAddr, savedUser, token, savedCA := admin.saved(t)
		caPEM, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		if savedAddr != url || savedUser != "admin" || !strings.HasPrefix(token, "gh_") || savedCA != string(caPEM) {
			t.Errorf("saved login: address %q user %q token %.8q… CA saved %v", savedAddr, savedUser, token, savedCA == string(caPEM))
		}
		var who apitypes.WhoAmI
		admin.json(t, &who, "whoami")
		if who.User != "admin" || !slices.Contains(who.Permissions, "user:admin") || !slices.Contains(who.Permissions, "audit:read") {
			t.Errorf("whoami: %+v", who)
		}
		adminToken = token
	})
	api := newAdminAPI(t, url, caFile, adminToken)

	step("groups", func(t *testing.T) {
		out := admin.ok(t, "", "group", "create", "payments", "--label", "env=prod", "--label", "team=payments")
		if !strings.Contains(out, "env=prod,team=payments") {
			t.Errorf("group create said:\n%s", out)
		}
		admin.ok(t, "", "group", "create", "sandbox", "--label", "env=dev")
		_, errOut := admin.fail(t, "", "group", "create", "sandbox")
		if !strings.Contains(errOut, "conflict") {
			t.Errorf("group create of an existing name: %q, want conflict", errOut)
		}
		var groups []apitypes.Group
		admin.json(t, &groups, "group", "list", "--selector", "env=prod")
		if len(groups) != 1 || groups[0].Name != "payments" ||
			!mapsEqual(groups[0].Labels, map[string]string{"env": "prod", "team": "payments"}) {
			t.Errorf("group list --selector env=prod: %+v, want payments only", groups)
		}
		admin.json(t, &groups, "group", "list")
		if names := groupNames(groups); !slices.Equal(names, []string{"payments", "sandbox"}) {
			t.Errorf("group list: %v", names)
		}
	})

	step("instances", func(t *testing.T) {
		admin.ok(t, "", "host", "create", "h1")
		admin.ok(t, "", "instance", "create", "p1", "--group", "payments", "--host", "h1", "--listen", ":18080", "--status-listen", ":18085")
		var instances []apitypes.Instance
		admin.json(t, &instances, "instance", "list")
		if len(instances) != 1 {
			t.Fatalf("instance list: %+v", instances)
		}
		in := instances[0]
		if in.Name != "p1" || in.Group != "payments" || in.Host != "h1" || in.Listen != ":18080" ||
			in.StatusListen != ":18085" || in.Status != "Pending" {
			t.Errorf("instance: %+v, want p1 of payments on h1, Pending", in)
		}
		out := admin.ok(t, "", "instance", "list")
		if !regexp.MustCompile(`(?m)^p1\s+payments\s+h1\s+Pending\s`).MatchString(out) {
			t.Errorf("instance list table:\n%s", out)
		}
	})

	step("invalid config", func(t *testing.T) {
		bad := filepath.Join(work, "bad.yaml")
		writeFile(t, bad, adminBadYAML)
		draftBefore, etagBefore := api.draft(t, "payments")
		wantErrors := []string{
			`services[0].upstream: no upstream is named "ledgr"`,
			`services[0].routes[0].paths[0]: must start with "/"`,
		}

		out, errOut := admin.fail(t, "", "config", "apply", "-f", bad, "--group", "payments")
		for _, want := range append(wantErrors, "nothing applied") {
			if !strings.Contains(out+errOut, want) {
				t.Errorf("config apply of an invalid file: want %q in\n%s%s", want, out, errOut)
			}
		}
		draftAfter, etagAfter := api.draft(t, "payments")
		if etagAfter != etagBefore || !configsEqual(t, draftBefore.Config, draftAfter.Config) {
			t.Errorf("an invalid apply changed the draft: %s → %s", etagBefore, etagAfter)
		}

		out, errOut = admin.fail(t, "", "config", "validate", "--group", "payments", "-f", bad)
		for _, want := range append(wantErrors, bad+" has 2 errors") {
			if !strings.Contains(out, want) {
				t.Errorf("config validate of an invalid file: want %q in\n%s", want, out)
			}
		}
		if !strings.Contains(errOut, "is not valid") {
			t.Errorf("config validate stderr: %q", errOut)
		}

		// The same errors in JSON for scripts, still exiting 1.
		out, _ = admin.fail(t, "", "config", "validate", "--group", "payments", "-f", bad, "-o", "json")
		var v apitypes.Validation
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("config validate -o json: %v\n%s", err, out)
		}
		var fields []string
		for _, e := range v.Errors {
			fields = append(fields, e.Field)
		}
		slices.Sort(fields)
		if v.Valid || !slices.Equal(fields, []string{"services[0].routes[0].paths[0]", "services[0].upstream"}) {
			t.Errorf("config validate -o json: %+v", v)
		}
		if _, etag := api.draft(t, "payments"); etag != etagBefore {
			t.Errorf("validate changed the draft: %s → %s", etagBefore, etag)
		}
	})

	var sum1 string
	step("deploy v1", func(t *testing.T) {
		v1 := filepath.Join(work, "v1.yaml")
		writeFile(t, v1, adminV1YAML)
		out := admin.ok(t, "", "config", "validate", "--group", "payments", "-f", v1)
		if !strings.Contains(out, v1+" is valid: sha256:") {
			t.Errorf("config validate of v1: %q", out)
		}
		out = admin.ok(t, "", "config", "apply", "-f", v1, "--group", "payments")
		if !strings.Contains(out, "Applied "+v1+" to the draft of group payments (version ") {
			t.Errorf("config apply said %q", out)
		}
		out = admin.ok(t, "", "deploy", "--group", "payments", "-m", "first", "--no-wait")
		m := regexp.MustCompile(`^deployed payments #1 (sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("deploy said %q, want \"deployed payments #1 sha256:…\"", out)
		}
		sum1 = m[1]
	})

	var sum2 string
	step("edit, diff, deploy, rollback", func(t *testing.T) {
		dump := admin.ok(t, "", "config", "dump", "--group", "payments")
		if strings.Contains(dump, adminE2ESecret) || !strings.Contains(dump, deploy.Redacted) {
			t.Fatalf("config dump shows the secret, or no (redacted):\n%s", dump)
		}
		// Edit the dump and apply it back: the redacted key is kept.
		v2 := filepath.Join(work, "v2.yaml")
		if !strings.Contains(dump, "127.0.0.1:9001") {
			t.Fatalf("config dump has no target 127.0.0.1:9001:\n%s", dump)
		}
		writeFile(t, v2, strings.Replace(dump, "127.0.0.1:9001", "127.0.0.1:9002", 1))
		admin.ok(t, "", "config", "apply", "-f", v2, "--group", "payments")

		out := admin.ok(t, "", "diff", "--group", "payments")
		if !regexp.MustCompile(`(?m)^upstream\s+ledger\s+changed\s+targets\[0\]\.address\s+"127\.0\.0\.1:9001"\s+"127\.0\.0\.1:9002"\s*$`).MatchString(out) {
			t.Errorf("diff (current → draft):\n%s", out)
		}
		if lines := strings.Count(strings.TrimSpace(out), "\n"); lines != 1 {
			t.Errorf("diff has %d rows, want 1 (the consumer's key was kept):\n%s", lines, out)
		}

		out = admin.ok(t, "", "deploy", "--group", "payments", "-m", "second", "--no-wait")
		m := regexp.MustCompile(`^deployed payments #2 (sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("deploy said %q", out)
		}
		sum2 = m[1]
		if sum2 == sum1 {
			t.Errorf("deployments 1 and 2 have the same checksum %s", sum1)
		}

		var d apitypes.Diff
		admin.json(t, &d, "diff", "--group", "payments", "1", "2")
		want := []deploy.Change{{Kind: deploy.KindUpstream, Name: "ledger", Op: deploy.OpChanged,
			Fields: []deploy.FieldChange{{Path: "targets[0].address", From: "127.0.0.1:9001", To: "127.0.0.1:9002"}}}}
		if d.Group != "payments" || d.From != "1" || d.To != "2" || !changesEqual(d.Changes, want) {
			t.Errorf("diff 1 2: %+v, want %+v", d, want)
		}
		admin.json(t, &d, "diff", "--group", "payments")
		if len(d.Changes) != 0 {
			t.Errorf("diff after deploying the draft: %+v, want none", d.Changes)
		}

		out = admin.ok(t, "", "rollback", "--group", "payments", "--to", "1", "-m", "back", "--no-wait", "--keep-draft")
		if want := "rolled back payments to #1: deployed #3 " + sum1 + "\ndraft kept as it was: the next deploy ships its changes\n"; out != want {
			t.Errorf("rollback said %q, want %q", out, want)
		}
		var ds []apitypes.Deployment
		admin.json(t, &ds, "deployments", "--group", "payments")
		checkDeployments(t, ds, sum1, sum2)
		// --keep-draft: the draft is left alone, deploying it would go to
		// 9002 again.
		admin.json(t, &d, "diff", "--group", "payments")
		if !changesEqual(d.Changes, []deploy.Change{{Kind: deploy.KindUpstream, Name: "ledger", Op: deploy.OpChanged,
			Fields: []deploy.FieldChange{{Path: "targets[0].address", From: "127.0.0.1:9001", To: "127.0.0.1:9002"}}}}) {
			t.Errorf("diff after the rollback (current → draft): %+v", d.Changes)
		}
		out = admin.ok(t, "", "deployments", "--group", "payments")
		if !regexp.MustCompile(`(?m)^3\s+\S+\s+admin\s+` + strings.TrimPrefix(sum1, "sha256:")[:12] + `\s+1\s+back\s*$`).MatchString(out) {
			t.Errorf("deployments table:\n%s", out)
		}
		for _, n := range []string{"1", "2", "3", "latest"} {
			if dump := admin.ok(t, "", "config", "dump", "--group", "payments", "--deployment", n); strings.Contains(dump, adminE2ESecret) {
				t.Errorf("config dump of deployment %s shows the secret", n)
			}
		}
	})

	step("concurrent draft edit", func(t *testing.T) {
		d, etag := api.draft(t, "payments")
		dump := admin.ok(t, "", "config", "dump", "--group", "payments")
		v3 := strings.Replace(dump, "127.0.0.1:9002", "127.0.0.1:9003", 1)
		code, h, body := api.do(t, "PUT", "/groups/payments/draft", v3, "If-Match", etag, "X-Request-Id", "e2e-put-ok")
		if code != http.StatusOK {
			t.Fatalf("PUT draft with If-Match %s: %d %s", etag, code, body)
		}
		if h.Get("ETag") == etag || h.Get("ETag") == "" {
			t.Errorf("PUT draft: ETag %q, was %q", h.Get("ETag"), etag)
		}
		stale := etag
		code, _, body = api.do(t, "PUT", "/groups/payments/draft", strings.Replace(v3, "9003", "9004", 1), "If-Match", stale, "X-Request-Id", "e2e-put-stale")
		if e := apiError(t, body); code != http.StatusConflict || e.Code != apitypes.CodeConflict || e.RequestID != "e2e-put-stale" {
			t.Errorf("PUT draft with a stale If-Match: %d %s, want 409 conflict", code, body)
		}
		code, _, body = api.do(t, "PUT", "/groups/payments/draft", v3)
		if e := apiError(t, body); code != http.StatusPreconditionRequired || e.Code != apitypes.CodePreconditionRequired {
			t.Errorf("PUT draft without If-Match: %d %s, want 428 precondition_required", code, body)
		}
		after, _ := api.draft(t, "payments")
		if after.Version <= d.Version || after.UpdatedBy != "admin" ||
			len(after.Config.Upstreams) != 1 || after.Config.Upstreams[0].Targets[0].Address != "127.0.0.1:9003" {
			t.Errorf("draft after the edits: version %d (was %d), by %q, %+v", after.Version, d.Version, after.UpdatedBy, after.Config.Upstreams)
		}

		// Truly concurrent: of several writers holding the same ETag,
		// exactly one wins.
		_, etag = api.draft(t, "payments")
		const writers = 6
		codes := make([]int, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				doc := strings.Replace(v3, "127.0.0.1:9003", fmt.Sprintf("127.0.0.1:%d", 9100+i), 1)
				req, _ := http.NewRequest("PUT", api.base+apitypes.Prefix+"/groups/payments/draft", strings.NewReader(doc))
				req.Header.Set("Authorization", "Bearer "+api.token)
				req.Header.Set("If-Match", etag)
				resp, err := api.hc.Do(req)
				if err != nil {
					codes[i] = -1
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			})
		}
		wg.Wait()
		won := 0
		for _, c := range codes {
			switch c {
			case http.StatusOK:
				won++
			case http.StatusConflict:
			default:
				t.Errorf("concurrent PUT: status %d", c)
			}
		}
		if won != 1 {
			t.Errorf("concurrent PUTs with one ETag: statuses %v, want exactly one 200", codes)
		}
		// Leave the draft at a known value for the restart check.
		_, etag = api.draft(t, "payments")
		if code, _, body := api.do(t, "PUT", "/groups/payments/draft", v3, "If-Match", etag); code != http.StatusOK {
			t.Fatalf("PUT draft: %d %s", code, body)
		}
		if dump := admin.ok(t, "", "config", "dump", "--group", "payments"); strings.Contains(dump, adminE2ESecret) ||
			!strings.Contains(dump, "127.0.0.1:9003") {
			t.Errorf("draft after the concurrent edits:\n%s", dump)
		}
	})

	val := newAdminCLI(t, tr)
	const valPassword = "val-password-e2e"
	step("scoped user", func(t *testing.T) {
		out := admin.ok(t, valPassword+"\n", "user", "create", "val", "--password-stdin")
		if !strings.Contains(out, "Created user val.") {
			t.Errorf("user create said %q", out)
		}
		out = admin.ok(t, "", "role", "bind", "--user", "val", "--role", "viewer", "--selector", "env=dev")
		if !strings.Contains(out, "Bound role viewer to val on selector env=dev") {
			t.Errorf("role bind said %q", out)
		}
		// val trusts the node by the CA file rather than the fingerprint.
		out = val.ok(t, valPassword+"\n", "login", "--addr", url, "--ca-cert", caFile, "--user", "val", "--password-stdin")
		if !strings.Contains(out, "as val") {
			t.Errorf("login as val said %q", out)
		}
		var groups []apitypes.Group
		val.json(t, &groups, "group", "list")
		if names := groupNames(groups); !slices.Equal(names, []string{"sandbox"}) {
			t.Errorf("val's group list: %v, want sandbox only", names)
		}
		_, errOut := val.fail(t, "", "deploy", "--group", "payments", "-m", "x")
		if !strings.Contains(errOut, "forbidden") {
			t.Errorf("val's deploy of payments: %q, want forbidden", errOut)
		}
		_, errOut = val.fail(t, "", "audit")
		if !strings.Contains(errOut, "forbidden") {
			t.Errorf("val's audit: %q, want forbidden", errOut)
		}
		var ds []apitypes.Deployment
		admin.json(t, &ds, "deployments", "--group", "payments")
		if len(ds) != 3 {
			t.Errorf("a forbidden deploy made a deployment: %d deployments", len(ds))
		}
	})

	var auditBefore []apitypes.AuditEntry
	step("audit", func(t *testing.T) {
		admin.json(t, &auditBefore, "audit", "--limit", "200")
		checkAudit(t, auditBefore)
		var onlyDeploys []apitypes.AuditEntry
		admin.json(t, &onlyDeploys, "audit", "--group", "payments", "--action", "deployment.create")
		if len(onlyDeploys) != 3 { // #1, #2 and val's denied one
			t.Errorf("audit --group payments --action deployment.create: %d entries, want 3", len(onlyDeploys))
		}
		out := admin.ok(t, "", "audit", "--user", "val", "--limit", "5")
		if !regexp.MustCompile(`(?m)^\d+\s+\S+\s+val\s+deployment\.create\s+\S+\s+denied\s+403\s+127\.0\.0\.1\s*$`).MatchString(out) {
			t.Errorf("audit table for val:\n%s", out)
		}
	})

	// Snapshot before the restart.
	var groupsBefore []apitypes.Group
	var instancesBefore []apitypes.Instance
	admin.json(t, &groupsBefore, "group", "list")
	admin.json(t, &instancesBefore, "instance", "list")
	draftDumpBefore := admin.ok(t, "", "config", "dump", "--group", "payments", "-o", "json")

	// 12. SIGTERM, and start again on the same data dir. The test's own
	// connections stay open: connections that never carried a request (one
	// the concurrent writers dialled and did not need) must not hold the
	// shutdown up.
	stopping := time.Now()
	node.signal(syscall.SIGTERM)
	if code := node.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("admin node exited with %d after SIGTERM, want 0\n%s", code, node.out.String())
	}
	if d := time.Since(stopping); d > 3*time.Second {
		t.Errorf("the admin node took %s to stop on SIGTERM", d)
	}
	if !strings.Contains(node.out.String(), "shutting down") {
		t.Errorf("admin node did not log its shutdown:\n%s", node.out.String())
	}
	if _, errOut := admin.fail(t, "", "group", "list"); !strings.Contains(errOut, "connection refused") {
		t.Errorf("group list with the node stopped: %q, want connection refused", errOut)
	}
	node2 := startAdminNode(t, dataDir, addr, fingerprint)

	step("after restart", func(t *testing.T) {
		var who apitypes.WhoAmI
		admin.json(t, &who, "whoami")
		if who.User != "admin" {
			t.Errorf("whoami with the saved token after the restart: %+v", who)
		}
		var groups []apitypes.Group
		admin.json(t, &groups, "group", "list")
		if len(groups) != len(groupsBefore) {
			t.Fatalf("groups after the restart: %+v, before %+v", groups, groupsBefore)
		}
		for i := range groups {
			g, b := groups[i], groupsBefore[i]
			if g.Name != b.Name || !mapsEqual(g.Labels, b.Labels) || g.Version != b.Version || !g.UpdatedAt.Equal(b.UpdatedAt) {
				t.Errorf("group after the restart: %+v, before %+v", g, b)
			}
		}
		var instances []apitypes.Instance
		admin.json(t, &instances, "instance", "list")
		if len(instances) != 1 || instances[0].Name != "p1" || instances[0].Group != "payments" ||
			instances[0].Host != "h1" || instances[0].Status != "Pending" || instances[0].Listen != instancesBefore[0].Listen {
			t.Errorf("instances after the restart: %+v", instances)
		}
		var ds []apitypes.Deployment
		admin.json(t, &ds, "deployments", "--group", "payments")
		checkDeployments(t, ds, sum1, sum2)
		if dump := admin.ok(t, "", "config", "dump", "--group", "payments", "-o", "json"); dump != draftDumpBefore {
			t.Errorf("draft after the restart:\n%s\nbefore:\n%s", dump, draftDumpBefore)
		}
		var latest deploy.Config
		admin.json(t, &latest, "config", "dump", "--group", "payments", "--deployment", "latest")
		if len(latest.Upstreams) != 1 || latest.Upstreams[0].Targets[0].Address != "127.0.0.1:9001" {
			t.Errorf("latest deployment after the restart (the rollback to #1): %+v", latest.Upstreams)
		}
		var entries []apitypes.AuditEntry
		admin.json(t, &entries, "audit", "--limit", "200")
		if len(entries) != len(auditBefore) {
			t.Errorf("audit after the restart: %d entries, before %d", len(entries), len(auditBefore))
		}
		for i := range min(len(entries), len(auditBefore)) {
			e, b := entries[i], auditBefore[i]
			if e.Seq != b.Seq || e.Action != b.Action || e.User != b.User || e.Result != b.Result ||
				e.RequestID != b.RequestID || !e.Time.Equal(b.Time) {
				t.Errorf("audit entry %d after the restart: %+v, before %+v", i, e, b)
			}
		}
		// val's saved token too.
		val.json(t, &groups, "group", "list")
		if names := groupNames(groups); !slices.Equal(names, []string{"sandbox"}) {
			t.Errorf("val's groups after the restart: %v", names)
		}
		// And new writes go on from where they were.
		out := admin.ok(t, "", "deploy", "--group", "payments", "-m", "after restart", "--no-wait")
		if !strings.HasPrefix(out, "deployed payments #4 sha256:") {
			t.Errorf("deploy after the restart said %q", out)
		}
	})

	step("no secret anywhere", func(t *testing.T) {
		logs := node.out.String() + node2.out.String()
		for what, text := range map[string]string{
			"the CLI's output":     tr.String(),
			"the admin node's log": logs,
		} {
			for _, secret := range []string{adminE2ESecret, password, valPassword} {
				if strings.Contains(text, secret) {
					t.Errorf("%s holds the secret %q", what, secret)
				}
			}
		}
		data, err := os.ReadFile(admin.config)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), password) {
			t.Errorf("the CLI configuration holds the password")
		}
	})

	node2.signal(syscall.SIGTERM)
	if code := node2.exit(t, 15*time.Second); code != 0 {
		t.Errorf("admin node exited with %d after SIGTERM, want 0", code)
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// checkDeployments checks the list of three deployments, newest first:
// first, second, and a rollback to the first.
func checkDeployments(t *testing.T, ds []apitypes.Deployment, sum1, sum2 string) {
	t.Helper()
	if len(ds) != 3 {
		t.Fatalf("deployments: %d, want 3: %+v", len(ds), ds)
	}
	want := []struct {
		number, rollbackOf uint64
		sum, message       string
	}{{3, 1, sum1, "back"}, {2, 0, sum2, "second"}, {1, 0, sum1, "first"}}
	for i, w := range want {
		d := ds[i]
		if d.Group != "payments" || d.Number != w.number || d.RollbackOf != w.rollbackOf || d.Checksum != w.sum ||
			d.Message != w.message || d.Author != "admin" || d.Signature == "" || d.CreatedAt.IsZero() || d.Config != nil {
			t.Errorf("deployment %d: %+v, want #%d rollback_of %d %s %q by admin, signed, without config",
				i, d, w.number, w.rollbackOf, w.sum, w.message)
		}
	}
}

// checkAudit checks that every step left its entry.
func checkAudit(t *testing.T, entries []apitypes.AuditEntry) {
	t.Helper()
	okBy := map[string]int{}
	for _, e := range entries {
		if e.Action == "domain.init" {
			// Written by `admin init` on the machine: no request.
			if e.User != "admin" || e.Result != apitypes.AuditOK || e.Target != "e2e" || e.Source != "local" {
				t.Errorf("domain.init entry: %+v", e)
			}
			continue
		}
		if e.RequestID == "" || e.Source != "127.0.0.1" || e.Time.IsZero() || e.Seq == 0 {
			t.Errorf("audit entry without request ID, source, time or seq: %+v", e)
		}
		if e.Result == apitypes.AuditOK && e.User == "admin" {
			okBy[e.Action]++
		}
		for _, secret := range []string{adminE2ESecret} {
			if strings.Contains(fmt.Sprintf("%+v", e), secret) {
				t.Errorf("audit entry holds the secret: %+v", e)
			}
		}
	}
	for action, n := range map[string]int{
		"auth.login": 1, "group.create": 2, "host.create": 1, "instance.create": 1,
		// v1, v2 by the CLI; the good PUT, the concurrent winner and the
		// last PUT by hand.
		"draft.update": 5, "deployment.create": 2, "deployment.rollback": 1,
		"user.create": 1, "binding.create": 1,
	} {
		if okBy[action] < n {
			t.Errorf("audit: %d ok entries by admin for %s, want at least %d", okBy[action], action, n)
		}
	}
	find := func(pred func(apitypes.AuditEntry) bool) bool { return slices.ContainsFunc(entries, pred) }
	if !find(func(e apitypes.AuditEntry) bool { return e.Action == "domain.init" }) {
		t.Errorf("audit: no domain.init entry")
	}
	if !find(func(e apitypes.AuditEntry) bool {
		return e.User == "val" && e.Action == "deployment.create" && e.Result == apitypes.AuditDenied &&
			e.Status == http.StatusForbidden && e.Group == "payments"
	}) {
		t.Errorf("audit: no denied deployment.create of payments by val")
	}
	if !find(func(e apitypes.AuditEntry) bool {
		return e.User == "val" && e.Action == "auth.login" && e.Result == apitypes.AuditOK
	}) {
		t.Errorf("audit: no login by val")
	}
	if !find(func(e apitypes.AuditEntry) bool {
		return e.Action == "auth.login" && e.User == "admin" && e.Result == apitypes.AuditDenied
	}) {
		t.Errorf("audit: no failed login of admin (wrong password)")
	}
	if !find(func(e apitypes.AuditEntry) bool {
		return e.Action == "draft.update" && e.RequestID == "e2e-put-ok" && e.Result == apitypes.AuditOK
	}) {
		t.Errorf("audit: no ok draft.update with the request ID sent (e2e-put-ok)")
	}
	if !find(func(e apitypes.AuditEntry) bool {
		return e.Action == "draft.update" && e.RequestID == "e2e-put-stale" && e.Status == http.StatusConflict
	}) {
		t.Errorf("audit: no draft.update entry for the stale If-Match (409)")
	}
	if !find(func(e apitypes.AuditEntry) bool {
		return e.Action == "deployment.create" && e.User == "admin" && e.Group == "payments" && e.Result == apitypes.AuditOK
	}) {
		t.Errorf("audit: deployment.create entries do not name the group")
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq >= entries[i-1].Seq {
			t.Errorf("audit not newest first: seq %d after %d", entries[i].Seq, entries[i-1].Seq)
			break
		}
	}
}

func groupNames(groups []apitypes.Group) []string {
	var names []string
	for _, g := range groups {
		names = append(names, g.Name)
	}
	slices.Sort(names)
	return names
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func configsEqual(t *testing.T, a, b deploy.Config) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func changesEqual(a, b []deploy.Change) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
