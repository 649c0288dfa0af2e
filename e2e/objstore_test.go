package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/s3test"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/objstore"
	"github.com/gatehouse/gatehouse/pubseal"
)

// The configuration fallback from object storage (docs/object-storage.md),
// end to end: the admin node publishes each group's current deployment to
// a real S3-protocol server on loopback (signatures checked), and with
// every admin node stopped a node manager whose instance has no stored
// deployment, and a standalone gateway on a fresh data dir, serve it.

// publishKeys are a domain's publish keys as gatehouse publish-key export
// writes them, and the file.
type publishKeys struct {
	file   string
	domain string
	keys   []*pubseal.Key
}

// exportPublishKeys runs gatehouse publish-key export into a new file of
// dir and reads it back.
func exportPublishKeys(t *testing.T, cli *adminCLI, dir string) publishKeys {
	t.Helper()
	pk := publishKeys{file: filepath.Join(dir, fmt.Sprintf("publish-%d.key", time.Now().UnixNano()))}
	cli.ok(t, "", "publish-key", "export", "--to", pk.file)
	fi, err := os.Stat(pk.file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported key file: %v %v, want mode 0600", fi, err)
	}
	if pk.domain, pk.keys, err = pubseal.ReadKeyFile(pk.file); err != nil {
		t.Fatal(err)
	}
	return pk
}

// seal seals plain as the admin node publishes it for group.
func (pk publishKeys) seal(t *testing.T, group string, plain []byte) []byte {
	t.Helper()
	b, err := pubseal.Seal(pk.keys[0], pk.domain, group, plain)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// open opens an object published for group.
func (pk publishKeys) open(t *testing.T, group string, raw []byte) []byte {
	t.Helper()
	plain, _, err := pubseal.Open(pk.keys, pk.domain, group, raw)
	if err != nil {
		t.Fatalf("published object of %s: %v\n%s", group, err, raw)
	}
	return plain
}

// published reads the deployment published for group, opened with pk,
// and the object as the bucket holds it; nil if none or if it does not
// open (an object changed by hand, not mended yet).
func published(t *testing.T, b objstore.Bucket, pk publishKeys, group string) (*deploy.Deployment, []byte) {
	t.Helper()
	r, err := b.Get(context.Background(), "groups/"+group+"/current")
	if err != nil {
		return nil, nil
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := pubseal.Open(pk.keys, pk.domain, group, raw)
	if err != nil {
		return nil, raw
	}
	var d deploy.Deployment
	if err := json.Unmarshal(plain, &d); err != nil {
		t.Fatalf("published object of %s: %v", group, err)
	}
	return &d, raw
}

func waitPublished(t *testing.T, b objstore.Bucket, pk publishKeys, group string, n uint64) []byte {
	t.Helper()
	var raw []byte
	until(t, fmt.Sprintf("deployment #%d of %s published", n, group), func() (bool, string) {
		d, r := published(t, b, pk, group)
		if d == nil {
			return false, fmt.Sprintf("nothing published that opens: %.200s", r)
		}
		raw = r
		return d.Number == n, fmt.Sprintf("#%d published", d.Number)
	})
	return raw
}

// fallbackSecret is the value of an environment secret resolved into the
// group's configuration: it must never be in the bucket in clear.
const fallbackSecret = "fallback-secret-4f1c9a7e2b"

// deployWithSecret deploys a configuration routing to upstreamAddr whose
// consumer's key is the environment secret APP_KEY.
func (d *nmDomain) deployWithSecret(t *testing.T, upstreamAddr, message string) uint64 {
	t.Helper()
	f := filepath.Join(d.work, "config.yaml")
	writeFile(t, f, routeConfig(upstreamAddr)+`consumers:
  - name: app
    credentials:
      - type: key
        key: ${secret:APP_KEY}
`)
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", nmGroup)
	out := d.cli.ok(t, "", "deploy", "--group", nmGroup, "-m", message, "--no-wait")
	m := deployedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("deploy said %q", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// domainKey is the domain's deployment key as node.json holds it.
func (d *nmDomain) domainKey(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(d.nodeDir, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		SigningKey string `json:"signing_key"`
	}
	if err := json.Unmarshal(data, &id); err != nil || id.SigningKey == "" {
		t.Fatalf("node.json: %v %s", err, data)
	}
	return id.SigningKey
}

func (d *nmDomain) stopAdmin(t *testing.T) {
	t.Helper()
	d.admin.signal(syscall.SIGTERM)
	if code := d.admin.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("admin node exited with %d after SIGTERM", code)
	}
}

// routesTo checks that requests through the gateway at addr reach want.
func routesTo(addr, want string) (bool, string) {
	resp, err := noKeepAlive.Get("http://" + addr + "/fallback")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	got := resp.Header.Get("X-Upstream")
	return resp.StatusCode == http.StatusOK && got == want, fmt.Sprintf("%d from %q: %s", resp.StatusCode, got, body)
}

// gatewayRefusal reads the reason of the last deployment a gateway
// refused, from /status.
func gatewayRefusal(t *testing.T, status string) (number uint64, reason string) {
	t.Helper()
	resp, err := http.Get("http://" + status + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Deployment *struct {
			Applied     uint64 `json:"applied"`
			LastRefused *struct {
				Number uint64 `json:"number"`
				Reason string `json:"reason"`
			} `json:"last_refused"`
		} `json:"deployment"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Deployment == nil || r.Deployment.LastRefused == nil {
		return 0, ""
	}
	return r.Deployment.LastRefused.Number, r.Deployment.LastRefused.Reason
}

func TestFallbackFromObjectStorage(t *testing.T) {
	began := time.Now()
	s3 := s3test.Start(t)
	// The admin node, the node manager and the gateway started below take
	// the credentials from their environment, inherited from this test's.
	s3.SetEnv(t)
	location := s3.URL("e2e")
	bucket, err := objstore.Open(context.Background(), location, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u1, u2 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil)

	// A node manager learns its instance while the group has no
	// deployment yet, and is stopped.
	d := newNMDomain(t, "--publish-to", location, "--publish-interval", "1h")
	d.joinNode(t)
	d.createInstance(t, "gw-a")
	node := d.startNode(t, "--fallback-config", location)
	d.waitLocal(t, "gw-a running without a deployment", func(v map[string]localapi.InstanceView) bool {
		in := v["gw-a"]
		return in.Process == localapi.ProcessRunning && in.AppliedDeployment == 0 && in.DesiredDeployment == 0
	})
	node.signal(syscall.SIGTERM)
	node.exit(t, 15*time.Second)

	// Deployment #1, whose configuration holds an environment secret, is
	// published sealed; then every admin node stops.
	d.cli.ok(t, "", "env", "set", "fallback", "REGION=eu")
	d.cli.ok(t, fallbackSecret+"\n", "env", "secret", "set", "fallback", "APP_KEY", "--value-stdin")
	d.cli.ok(t, "", "group", "update", nmGroup, "--environment", "fallback")
	pk := exportPublishKeys(t, d.cli, d.work)
	if n := d.deployWithSecret(t, u1.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	first := waitPublished(t, bucket, pk, nmGroup, 1)
	firstPlain := pk.open(t, nmGroup, first)
	if !strings.Contains(string(firstPlain), fallbackSecret) {
		t.Fatalf("the deployment does not hold the secret: this test checks nothing:\n%s", firstPlain)
	}
	for _, clear := range []string{fallbackSecret, `"number"`, `"checksum"`, `"config"`, "mallory", "admin"} {
		if strings.Contains(string(first), clear) {
			t.Errorf("the object in the bucket shows %s:\n%s", clear, first)
		}
	}
	// The object is in the bucket a moment before the line is logged.
	d.admin.waitFor(t, 10*time.Second, "the admin node to log the publication", func() bool {
		return strings.Contains(d.admin.out.String(), "deployment published")
	})
	d.stopAdmin(t)

	// The node manager, with no admin node and no deployment stored,
	// takes the published one and its gateway serves it.
	node = d.startNode(t, "--fallback-config", location)
	d.waitLocal(t, "gw-a serving the published deployment #1", func(v map[string]localapi.InstanceView) bool {
		in := v["gw-a"]
		return in.Process == localapi.ProcessRunning && in.AppliedDeployment == 1 && in.Ready && in.LastError == ""
	})
	d.mustRouteTo(t, "u1", "gw-a")
	node.waitFor(t, nmDeadline, "the fallback in the log", func() bool {
		return strings.Contains(node.out.String(), "deployment taken from object storage")
	})

	// A gateway on a fresh data dir, from the published object alone.
	objectURL := "s3://" + s3.Bucket + "/e2e/groups/" + nmGroup + "/current?endpoint=" + s3.Endpoint + "&style=path"
	gw := startGateway(t, gatewayOpts{dataDir: t.TempDir(), extra: []string{"--config-url", objectURL,
		"--domain-key", d.domainKey(t), "--config-key", pk.file, "--config-poll", "200ms", "--instance", "standalone"}})
	gw.waitReady(t)
	until(t, "the standalone gateway routing to u1", func() (bool, string) { return routesTo(gw.listen, "u1") })

	// Without the publish keys a gateway does not start; with another
	// domain's (or an outdated) key it starts unready and says why.
	_, errOut := d.cli.fail(t, "", "gateway", "--config-url", objectURL, "--domain-key", d.domainKey(t),
		"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--status-listen", "127.0.0.1:0", "--tls-listen", "")
	if !strings.Contains(errOut, "--config-key is required with --config-url") {
		t.Errorf("a gateway without --config-key: %q", errOut)
	}
	wrong := publishKeys{file: filepath.Join(d.work, "wrong.key"), domain: pk.domain}
	wk, _ := pubseal.ParseKey(pubseal.NewKey())
	if err := pubseal.WriteKeyFile(wrong.file, pk.domain, []*pubseal.Key{wk}); err != nil {
		t.Fatal(err)
	}
	wrongGW := startGateway(t, gatewayOpts{dataDir: t.TempDir(), extra: []string{"--config-url", objectURL,
		"--domain-key", d.domainKey(t), "--config-key", wrong.file, "--config-poll", "200ms", "--instance", "wrong-key"}})
	wrongGW.waitFor(t, nmDeadline, "the refusal of an object it cannot open, in the log", func() bool {
		out := wrongGW.out.String()
		return strings.Contains(out, "published deployment refused") && strings.Contains(out, "groups/"+nmGroup+"/ at ") &&
			strings.Contains(out, "object current") &&
			strings.Contains(out, pubseal.ErrUnknownKey.Error())
	})
	if r := wrongGW.report(t); r.Ready || r.Configuration != nil {
		t.Errorf("a gateway with a wrong publish key serves: %+v", r)
	}
	wrongGW.signal(syscall.SIGTERM)
	wrongGW.exit(t, 15*time.Second)

	// The admin node comes back: normal delivery resumes, and a deploy
	// goes through while the bucket fails, which shows in the log and
	// the metrics, and is published once the bucket is back.
	d.admin = startAdminNode(t, d.adminDir, d.adminAddr, d.fingerprint, "--publish-to", location, "--publish-interval", "1h")
	s3.FailNext(1<<20, http.StatusInternalServerError)
	if n := d.deployWithSecret(t, u2.addr, "second"); n != 2 {
		t.Fatalf("second deployment is #%d", n)
	}
	d.waitLocal(t, "gw-a on #2 from the admin node", d.appliedEverywhere(2))
	d.mustRouteTo(t, "u2", "gw-a")
	d.admin.waitFor(t, nmDeadline, "the failed publication in the log", func() bool {
		return strings.Contains(d.admin.out.String(), "publish deployments to object storage")
	})
	_, _, token, _ := d.cli.saved(t)
	api := newAdminAPI(t, d.url, d.caFile, token)
	metric := func(name string) string {
		code, _, body := api.do(t, "GET", "/metrics/prometheus", "")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics/prometheus: %d %s", code, body)
		}
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" ")
			}
		}
		return ""
	}
	until(t, "the failing publication in the metrics", func() (bool, string) {
		v := metric("gatehouse_admin_publish_pending_groups")
		return v == "1", "pending groups " + v
	})
	if v := metric(`gatehouse_admin_publish_total{result="error"}`); v == "" || v == "0" {
		t.Errorf("publication errors counted %q", v)
	}
	s3.FailNext(0, 0)
	// A second group, to forge a cross-group object from; its creation
	// is also a change that wakes the publisher before its next retry.
	d.cli.ok(t, "", "group", "create", "g2")
	waitPublished(t, bucket, pk, nmGroup, 2)
	until(t, "the standalone gateway routing to u2", func() (bool, string) { return routesTo(gw.listen, "u2") })
	until(t, "no publication pending", func() (bool, string) {
		v := metric("gatehouse_admin_publish_pending_groups")
		return v == "0", "pending groups " + v
	})
	cfg := filepath.Join(d.work, "g2.yaml")
	writeFile(t, cfg, routeConfig(u1.addr))
	d.cli.ok(t, "", "config", "apply", "-f", cfg, "--group", "g2")
	d.cli.ok(t, "", "deploy", "--group", "g2", "-m", "other group", "--no-wait")
	otherGroup := waitPublished(t, bucket, pk, "g2", 1)
	d.stopAdmin(t)

	// Forged objects are refused; the gateway keeps serving #2. Those
	// sealed with the publish key (a thief of the key who can write to
	// the bucket) are refused by the signature.
	_, otherKey, _ := deploy.GenerateSigningKey()
	foreign, err := deploy.NewDeployment("e2e", nmGroup, 9, &deploy.Config{}, "mallory", "", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign.Sign(otherKey)
	foreignPlain, _ := json.Marshal(foreign)
	foreignRaw := pk.seal(t, nmGroup, foreignPlain)
	var unsigned deploy.Deployment
	json.Unmarshal(firstPlain, &unsigned)
	unsigned.Number, unsigned.Signature = 10, nil
	unsignedPlain, _ := json.Marshal(unsigned)
	tampered := bytes.Clone(first)
	if i := bytes.Index(tampered, []byte(`"sealed":"`)) + 20; i > 20 {
		tampered[i] = map[bool]byte{true: 'B', false: 'A'}[tampered[i] == 'A']
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		number uint64
		want   string
	}{
		{"another domain's key", foreignRaw, 9, deploy.ErrBadSignature.Error()},
		{"unsigned", pk.seal(t, nmGroup, unsignedPlain), 10, deploy.ErrBadSignature.Error()},
		{"another group's object", otherGroup, 0, pubseal.ErrOpen.Error()},
		{"another group's deployment sealed for this group", pk.seal(t, nmGroup, pk.open(t, "g2", otherGroup)), 1, "another group"},
		{"tampered", tampered, 0, pubseal.ErrOpen.Error()},
		{"in clear", firstPlain, 0, "a deployment in clear"},
		{"sealed with another key", publishKeys{domain: pk.domain, keys: []*pubseal.Key{wk}}.seal(t, nmGroup, unsignedPlain), 0, pubseal.ErrUnknownKey.Error()},
		{"older", first, 1, "older than the one served"},
	} {
		if err := bucket.Put(context.Background(), "groups/"+nmGroup+"/current", bytes.NewReader(tc.body)); err != nil {
			t.Fatal(err)
		}
		until(t, "the standalone gateway refusing the "+tc.name+" object", func() (bool, string) {
			n, reason := gatewayRefusal(t, gw.status)
			return n == tc.number && strings.Contains(reason, tc.want), fmt.Sprintf("#%d: %s", n, reason)
		})
		if ok, state := routesTo(gw.listen, "u2"); !ok {
			t.Errorf("after the %s object the gateway answers %s, want u2", tc.name, state)
		}
	}
	// A gateway on a fresh data dir does not start on a forged object.
	if err := bucket.Put(context.Background(), "groups/"+nmGroup+"/current", bytes.NewReader(foreignRaw)); err != nil {
		t.Fatal(err)
	}
	fresh := startGateway(t, gatewayOpts{dataDir: t.TempDir(), extra: []string{"--config-url", objectURL,
		"--domain-key", d.domainKey(t), "--config-key", pk.file, "--config-poll", "200ms", "--instance", "fresh"}})
	fresh.waitFor(t, nmDeadline, "the refusal in the log", func() bool {
		return strings.Contains(fresh.out.String(), "published deployment refused")
	})
	if r := fresh.report(t); r.Ready || r.Configuration != nil {
		t.Errorf("a gateway started on a forged object: %+v", r)
	}

	// An admin node that starts reads the bucket back and mends it.
	d.admin = startAdminNode(t, d.adminDir, d.adminAddr, d.fingerprint, "--publish-to", location, "--publish-interval", "1h")
	waitPublished(t, bucket, pk, nmGroup, 2)
	fresh.waitReady(t)
	until(t, "the fresh gateway routing to u2", func() (bool, string) { return routesTo(fresh.listen, "u2") })

	for _, p := range []*proc{d.admin, node, gw, fresh, wrongGW} {
		for _, secret := range []string{s3.SecretKey, s3.AccessKey, fallbackSecret,
			base64.StdEncoding.EncodeToString(pk.keys[0].Bytes()), base64.StdEncoding.EncodeToString(wk.Bytes())} {
			if strings.Contains(p.out.String(), secret) {
				t.Errorf("gatehouse %s logs a secret (S3 credential, environment secret or publish key)", p.cmd.Args[1])
			}
		}
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// TestPGPublishByLeaseHolder: of two admin nodes on one PostgreSQL, the
// holder of the background lease publishes; when it dies the other takes
// the lease and publishes what is deployed through it, and mends an object
// changed behind its back at its next check, while the admin node that
// came back without the lease publishes nothing.
func TestPGPublishByLeaseHolder(t *testing.T) {
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	location := s3.URL("pg")
	bucket, err := objstore.Open(context.Background(), location, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := newPGFleet(t)
	publishArgs := append(f.pgAdminArgs(), "--publish-to", location, "--publish-interval", "2s")
	for i := range 2 {
		f.admin[i].signal(syscall.SIGTERM)
		f.admin[i].exit(t, 15*time.Second)
		f.admin[i] = startAdminNode(t, f.dir[i], f.addr[i], f.fingerprint, publishArgs...)
	}
	up := startUpstream(t, "u1", nil)
	f.cli[0].ok(t, "", "group", "create", nmGroup)
	cfg := filepath.Join(f.work, "g1.yaml")
	writeFile(t, cfg, routeConfig(up.addr))
	f.cli[0].ok(t, "", "config", "apply", "-f", cfg, "--group", nmGroup)
	if code, _, body := f.deploy(0, "first"); code != http.StatusCreated {
		t.Fatalf("deploy: %d %s", code, body)
	}
	pk := exportPublishKeys(t, f.cli[0], f.work)
	waitPublished(t, bucket, pk, nmGroup, 1)
	holder := -1
	until(t, "a lease holder", func() (bool, string) {
		h := f.leaseHolder(t, 0)
		for i := range 2 {
			if strings.HasSuffix(h, "/"+f.addr[i]) {
				holder = i
			}
		}
		return holder >= 0, h
	})
	other := 1 - holder
	if strings.Contains(f.admin[other].out.String(), "deployment published") {
		t.Errorf("the admin node without the lease published:\n%s", f.admin[other].out.String())
	}

	f.admin[holder].signal(syscall.SIGKILL)
	f.admin[holder].exit(t, 15*time.Second)
	until(t, "the other admin node deploying", func() (bool, string) {
		code, _, body := f.deploy(other, "second")
		return code == http.StatusCreated, body
	})
	waitPublished(t, bucket, pk, nmGroup, 2)
	if !strings.Contains(f.admin[other].out.String(), "deployment published: group=g1 number=2") {
		t.Errorf("deployment 2 not published by the new lease holder")
	}

	f.admin[holder] = startAdminNode(t, f.dir[holder], f.addr[holder], f.fingerprint, publishArgs...)
	if err := bucket.Put(context.Background(), "groups/"+nmGroup+"/current", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, bucket, pk, nmGroup, 2)
	waitfor.Holds(t, 3*time.Second, "the admin node without the lease publishing nothing", func() (bool, string) {
		return !strings.Contains(f.admin[holder].out.String(), "deployment published"), f.admin[holder].out.String()
	})
}
