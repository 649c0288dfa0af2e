package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// promoteSecrets are the consumer keys of the two domains: they must never
// be printed, exported nor answered by the API.
const (
	devAPIKey  = "dev-key-e2e-6c1f0a7d93"
	prodAPIKey = "prod-key-e2e-2b8e4f51aa"
)

// promoteDraft uses a setting for the upstream and a secret for the key.
const promoteDraft = `upstreams:
  - name: orders
    targets:
      - address: ${UPSTREAM}
services:
  - name: orders
    upstream: orders
    routes:
      - name: all
        paths: [/orders]
consumers:
  - name: app
    credentials:
      - type: key
        key: ${secret:API_KEY}
`

// promoteDomain is one admin node, its own domain, with a logged-in CLI.
type promoteDomain struct {
	name, url, caFile, token string
	fingerprint              string
	cli                      *adminCLI
	api                      *adminAPI
	node                     *proc
}

func newPromoteDomain(t *testing.T, tr *transcript, name string) *promoteDomain {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	cli := newAdminCLI(t, tr)
	out := cli.ok(t, "", "admin", "init", "--data-dir", dir, "--domain", name)
	m := regexp.MustCompile(`Generated password for admin \(shown once\): (\S+)`).FindStringSubmatch(out)
	f := regexp.MustCompile(`Node managers pin this CA: (SHA256:[0-9a-fA-F]{64})\n`).FindStringSubmatch(out)
	if m == nil || f == nil {
		t.Fatalf("admin init of %s:\n%s", name, out)
	}
	tr.reset()
	// Debug logs the most there is to look for secrets in.
	p, addrs := startReady(t, "admin", "run", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "debug")
	d := &promoteDomain{name: name, url: addrs["url"], caFile: filepath.Join(dir, "ca.crt"), fingerprint: f[1], cli: cli, node: p}
	cli.ok(t, m[1]+"\n", "login", "--addr", d.url, "--ca-fingerprint", f[1], "--user", "admin", "--password-stdin")
	_, _, d.token, _ = cli.saved(t)
	d.api = newAdminAPI(t, d.url, d.caFile, d.token)
	return d
}

func (d *promoteDomain) deployments(t *testing.T, group string) []apitypes.Deployment {
	t.Helper()
	var ds []apitypes.Deployment
	d.cli.json(t, &ds, "deployments", "--group", group)
	return ds
}

// deployment GETs a deployment and returns it with the raw answer.
func (d *promoteDomain) deployment(t *testing.T, group, n string) (apitypes.Deployment, string) {
	t.Helper()
	code, _, body := d.api.do(t, "GET", "/groups/"+group+"/deployments/"+n, "")
	if code != http.StatusOK {
		t.Fatalf("GET deployment %s of %s in %s: %d %s", n, group, d.name, code, body)
	}
	var dep apitypes.Deployment
	if err := json.Unmarshal(body, &dep); err != nil {
		t.Fatal(err)
	}
	return dep, string(body)
}

// runGateway joins a node manager to the domain as host h1, declares one
// instance of group there and runs the node manager; it returns the
// instance's traffic address.
func (d *promoteDomain) runGateway(t *testing.T, group string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	pids := &gatewayPids{pids: map[int]bool{}, nodeDir: dir}
	t.Cleanup(pids.killAll)
	tok := strings.TrimSpace(d.cli.ok(t, "", "token", "create", "--host", "h1"))
	d.cli.ok(t, "", "node", "join", "--admin", d.url, "--token", tok, "--ca-fingerprint", d.fingerprint, "--data-dir", dir)
	listen := freeAddr(t)
	d.cli.ok(t, "", "instance", "create", "gw-1", "--group", group, "--host", "h1",
		"--listen", listen, "--status-listen", freeAddr(t), "--gossip-listen", freeGossipAddr(t))
	_, addrs := startReady(t, "node", "run", "--data-dir", dir, "--listen", "127.0.0.1:0", "--heartbeat", "1s", "--wait", "5s",
		"--drain-timeout", "5s", "--log-level", "debug")
	nodeAddr := addrs["listen"]
	// The gateway's pid, for the cleanup, once the node manager runs it.
	until(t, "the gateway started", func() (bool, string) {
		resp, err := http.Get("http://" + nodeAddr + localapi.PathInstances)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var list localapi.InstanceList
		if json.NewDecoder(resp.Body).Decode(&list) != nil || len(list.Instances) == 0 || list.Instances[0].PID == 0 {
			return false, "no pid yet"
		}
		pids.add(list.Instances[0].PID)
		return true, ""
	})
	return listen
}

func TestPromotion(t *testing.T) {
	tr := &transcript{}
	dev := newPromoteDomain(t, tr, "dev")
	prod := newPromoteDomain(t, tr, "prod")
	work := t.TempDir()
	draft := filepath.Join(work, "draft.yaml")
	if err := os.WriteFile(draft, []byte(promoteDraft), 0o644); err != nil {
		t.Fatal(err)
	}

	// dev: its environment, a group deployed with it.
	dev.cli.ok(t, "", "env", "set", "dev", "UPSTREAM=127.0.0.1:9001")
	dev.cli.ok(t, devAPIKey+"\n", "env", "secret", "set", "dev", "API_KEY", "--value-stdin")
	dev.cli.ok(t, "", "group", "create", "payments")
	// Without an environment, the placeholders have no value.
	dev.cli.ok(t, "", "config", "apply", "-f", draft, "--group", "payments", "--allow-invalid")
	_, errOut := dev.cli.fail(t, "", "deploy", "--group", "payments", "-m", "v1")
	if !strings.Contains(errOut, "UPSTREAM") || !strings.Contains(errOut, "secret:API_KEY") {
		t.Errorf("deploy without an environment: %q, want UPSTREAM and secret:API_KEY named", errOut)
	}
	dev.cli.ok(t, "", "group", "update", "payments", "--environment", "dev")
	dev.cli.ok(t, "", "config", "apply", "-f", draft, "--group", "payments")
	dev.cli.ok(t, "", "deploy", "--group", "payments", "-m", "v1")
	devDep, devBody := dev.deployment(t, "payments", "1")
	if got := devDep.Config.Upstreams[0].Targets[0].Address; got != "127.0.0.1:9001" {
		t.Errorf("dev deployment: upstream %q, want dev's 127.0.0.1:9001", got)
	}
	if devDep.Template == nil || devDep.Template.Upstreams[0].Targets[0].Address != "${UPSTREAM}" {
		t.Errorf("dev deployment: template %+v, want the draft's placeholders", devDep.Template)
	}
	if strings.Contains(devBody, devAPIKey) {
		t.Errorf("GET of dev's deployment holds the secret:\n%s", devBody)
	}

	// The package: no secret, and dev's key.
	pkgFile := filepath.Join(work, "payments-1.ghpkg")
	dev.cli.ok(t, "", "export", "--group", "payments", "--deployment", "1", "-o", pkgFile)
	pkg, err := os.ReadFile(pkgFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pkg), devAPIKey) || !strings.Contains(string(pkg), "${secret:API_KEY}") || !strings.Contains(string(pkg), "${UPSTREAM}") {
		t.Errorf("package:\n%s", pkg)
	}

	// Round trip: the same domain takes its own package back, with the
	// same checksum.
	// -o json is the import's answer with its roll-out (dev's group has no
	// instances: complete at once).
	var rt struct {
		apitypes.Import
		Rollout *apitypes.Rollout `json:"rollout"`
	}
	dev.cli.json(t, &rt, "import", pkgFile, "--group", "payments", "--env", "dev", "--yes")
	if rt.Deployment == nil || rt.Deployment.Checksum != devDep.Checksum || rt.Deployment.Source == nil || rt.Deployment.Source.Domain != "dev" {
		t.Errorf("round trip: %+v, want checksum %s and source dev", rt, devDep.Checksum)
	}
	if rt.Rollout == nil || rt.Rollout.State != "complete" || rt.Rollout.Deployment != rt.Deployment.Number {
		t.Errorf("round trip: roll-out %+v, want complete", rt.Rollout)
	}

	// prod: not yet trusting dev.
	prod.cli.ok(t, "", "group", "create", "payments")
	_, errOut = prod.cli.fail(t, "", "import", pkgFile, "--group", "payments", "--env", "prod", "--yes")
	if !strings.Contains(errOut, "dev") || !strings.Contains(strings.ToLower(errOut), "trust") {
		t.Errorf("import of an untrusted package: %q", errOut)
	}
	devKey := strings.TrimSpace(dev.cli.ok(t, "", "domain", "key"))
	prod.cli.ok(t, "", "trust", "add", "dev", "--key", devKey)

	// A tampered package is refused.
	tampered := filepath.Join(work, "tampered.ghpkg")
	if err := os.WriteFile(tampered, []byte(strings.Replace(string(pkg), `"author": "admin"`, `"author": "mallory"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut := prod.cli.fail(t, "", "import", tampered, "--group", "payments", "--env", "prod", "--yes"); !strings.Contains(errOut, "refused") {
		t.Errorf("import of a tampered package: %q", errOut)
	}

	// Missing settings: every name in one error, nothing deployed.
	prod.cli.ok(t, "", "env", "set", "prod", "OTHER=x")
	_, errOut = prod.cli.fail(t, "", "import", pkgFile, "--group", "payments", "--env", "prod", "--yes")
	if !strings.Contains(errOut, "2 placeholders have no value") || !strings.Contains(errOut, "UPSTREAM") || !strings.Contains(errOut, "secret:API_KEY") {
		t.Errorf("import with missing settings: %q", errOut)
	}
	if ds := prod.deployments(t, "payments"); len(ds) != 0 {
		t.Errorf("a refused import deployed: %+v", ds)
	}
	// prod's gateway: a node manager joined to prod, one instance of the
	// group, and prod's own upstream.
	prodUp := startUpstream(t, "prod-orders", nil)
	gwListen := prod.runGateway(t, "payments")
	prod.cli.ok(t, "", "env", "set", "prod", "UPSTREAM="+prodUp.addr)
	prod.cli.ok(t, prodAPIKey+"\n", "env", "secret", "set", "prod", "API_KEY", "--value-stdin")

	// A dry run changes nothing.
	out := prod.cli.ok(t, "", "import", pkgFile, "--group", "payments", "--env", "prod", "--dry-run")
	if !strings.Contains(out, "orders") {
		t.Errorf("dry run printed no diff:\n%s", out)
	}
	if ds := prod.deployments(t, "payments"); len(ds) != 0 {
		t.Errorf("a dry run deployed: %+v", ds)
	}

	// Declining the confirmation deploys nothing.
	if _, errOut, code := prod.cli.run(t, "n\n", "import", pkgFile, "--group", "payments", "--env", "prod"); code != 1 || !strings.Contains(errOut, "gatehouse: nothing deployed") {
		t.Errorf("declined import: exit %d, %q", code, errOut)
	}
	if ds := prod.deployments(t, "payments"); len(ds) != 0 {
		t.Errorf("a declined import deployed: %+v", ds)
	}

	// A user without deployment:create on the group is refused.
	prod.cli.ok(t, "viewer-password-e2e\n", "user", "create", "vic", "--password-stdin")
	prod.cli.ok(t, "", "role", "bind", "--user", "vic", "--role", "viewer", "--domain")
	vic := newAdminCLI(t, tr)
	vic.ok(t, "viewer-password-e2e\n", "login", "--addr", prod.url, "--ca-cert", prod.caFile, "--user", "vic", "--password-stdin")
	if _, errOut := vic.fail(t, "", "import", pkgFile, "--group", "payments", "--env", "prod", "--yes"); !strings.Contains(errOut, "forbidden") {
		t.Errorf("import by a viewer: %q, want forbidden", errOut)
	}

	// Promote: export from dev, import into prod, in one step.
	out = prod.cli.ok(t, "", "promote", "--from", dev.url, "--from-token", dev.token, "--from-ca-cert", dev.caFile,
		"--group", "payments", "--deployment", "1", "--env", "prod", "--yes",
		"--to", prod.url, "--to-token", prod.token, "--to-ca-cert", prod.caFile)
	if !strings.Contains(out, "deployed payments #1") || !strings.Contains(out, "from dev/payments #1") {
		t.Errorf("promote said:\n%s", out)
	}
	prodDep, prodBody := prod.deployment(t, "payments", "1")
	if got := prodDep.Config.Upstreams[0].Targets[0].Address; got != prodUp.addr {
		t.Errorf("prod deployment: upstream %q, want prod's %s", got, prodUp.addr)
	}
	// prod's gateway serves the promoted configuration with prod's upstream.
	until(t, "prod's gateway serving the promotion", func() (bool, string) {
		resp, err := noKeepAlive.Get("http://" + gwListen + "/orders")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200 && resp.Header.Get("X-Upstream") == "prod-orders",
			resp.Status + " from " + resp.Header.Get("X-Upstream")
	})
	if s := prodDep.Source; s == nil || s.Domain != "dev" || s.Group != "payments" || s.Deployment != 1 || !strings.HasPrefix(s.Checksum, "sha256:") {
		t.Errorf("prod deployment: source %+v", prodDep.Source)
	}
	if strings.Contains(prodBody, prodAPIKey) || strings.Contains(prodBody, devAPIKey) {
		t.Errorf("GET of prod's deployment holds a secret:\n%s", prodBody)
	}
	// The two domains run the same configuration as written, each with its
	// own values: no drift.
	out = prod.cli.ok(t, "", "diff", "--group", "payments",
		"--from", dev.url, "--from-token", dev.token, "--from-ca-cert", dev.caFile,
		"--to", prod.url, "--to-token", prod.token, "--to-ca-cert", prod.caFile)
	if !strings.Contains(out, "No changes from "+dev.url+" #2 to "+prod.url+" #1") {
		t.Errorf("diff between the domains:\n%s", out)
	}
	draft2 := filepath.Join(work, "draft2.yaml")
	if err := os.WriteFile(draft2, []byte(strings.Replace(promoteDraft, "[/orders]", "[/orders, /v2/orders]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	dev.cli.ok(t, "", "config", "apply", "-f", draft2, "--group", "payments")
	dev.cli.ok(t, "", "deploy", "--group", "payments", "-m", "v2")
	var drift apitypes.Diff
	prod.cli.json(t, &drift, "diff", "--group", "payments",
		"--from", dev.url, "--from-token", dev.token, "--from-ca-cert", dev.caFile,
		"--to", prod.url, "--to-token", prod.token, "--to-ca-cert", prod.caFile)
	if len(drift.Changes) != 1 || drift.Changes[0].Name != "orders/all" {
		t.Errorf("drift between the domains: %+v, want the route orders/all changed", drift.Changes)
	}

	var audit []apitypes.AuditEntry
	prod.cli.json(t, &audit, "audit", "--limit", "50")
	found := false
	for _, e := range audit {
		if e.Action == "deployment.import" && strings.Contains(e.Detail, "dev/payments deployment 1") && strings.Contains(e.Detail, "sha256:") {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry of the import naming its source: %+v", audit)
	}

	for _, secret := range []string{devAPIKey, prodAPIKey} {
		if strings.Contains(tr.String(), secret) {
			t.Errorf("the CLI printed secret %q:\n%s", secret, tr.String())
		}
		for _, d := range []*promoteDomain{dev, prod} {
			if strings.Contains(d.node.out.String(), secret) {
				t.Errorf("the admin node of %s logged secret %q", d.name, secret)
			}
		}
	}
}
