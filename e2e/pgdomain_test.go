package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// pgDomainPassword is put in every connection string of the test: the
// test server trusts local connections and ignores it, and it must never
// appear in anything a command prints or logs.
const pgDomainPassword = "pw-Zq81nHt5vW0s"

const pgDomainV1YAML = `upstreams:
  - name: ledger
    targets:
      - address: 127.0.0.1:9001
services:
  - name: payments
    upstream: ledger
    routes:
      - name: pay
        paths: [/api/*]
`

// startPostgres starts a PostgreSQL server for one test, skipping it only
// where PostgreSQL is not installed and pgtest.RequireEnv is unset.
func startPostgres(t *testing.T) *pgtest.Server {
	t.Helper()
	srv, err := pgtest.Start()
	switch {
	case errors.Is(err, pgtest.ErrNotInstalled) && os.Getenv(pgtest.RequireEnv) == "":
		t.Skip(err)
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// writeSecretFile writes a 0600 file of one line.
func writeSecretFile(t *testing.T, path, line string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A domain in PostgreSQL, made and served by the binary, and a second admin
// node joined to it with a key bundle: it serves the same domain, deploys
// signed with the same key, and a bundle of another domain or opened with
// a wrong passphrase is refused with nothing written.
func TestDomainOnPostgresAndJoin(t *testing.T) {
	srv := startPostgres(t)
	work := t.TempDir()
	dsn := srv.Database(t) + " password=" + pgDomainPassword
	dsnFile := writeSecretFile(t, filepath.Join(work, "dsn"), dsn)
	tr := &transcript{}
	cli := newAdminCLI(t, tr)
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	dirA := filepath.Join(work, "a")
	initOut := cli.ok(t, "", "admin", "init", "--data-dir", dirA, "--domain", "e2e", "--store-file", dsnFile)
	m := regexp.MustCompile(`Generated password for admin \(shown once\): (\S+)`).FindStringSubmatch(initOut)
	fp := regexp.MustCompile(`Node managers pin this CA: (SHA256:[0-9a-fA-F]{64})\n`).FindStringSubmatch(initOut)
	if m == nil || fp == nil {
		t.Fatalf("admin init said:\n%s", initOut)
	}
	password, fingerprint := m[1], fp[1]
	tr.reset()
	step("data dir holds keys, not the domain", func(t *testing.T) {
		for _, name := range []string{"ca.key", "signing.key", "settings.key"} {
			if m := permOf(t, filepath.Join(dirA, name)); m != 0o600 {
				t.Errorf("%s: mode %v, want 0600", name, m)
			}
		}
		if _, err := os.Stat(filepath.Join(dirA, "admin.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("admin.db in a data dir of a domain in PostgreSQL: %v", err)
		}
		// The database holds one domain: a second init on it is refused,
		// the connection string given in clear on the command line.
		_, errOut := cli.fail(t, "", "admin", "init", "--data-dir", filepath.Join(work, "again"), "--domain", "e2e2", "--store", dsn)
		if !strings.Contains(errOut, "already holds domain e2e") || !strings.Contains(errOut, "--join") {
			t.Errorf("second init on the database: %q", errOut)
		}
		// Run without the connection string names what is missing.
		_, errOut = cli.fail(t, "", "admin", "run", "--data-dir", dirA, "--listen", "127.0.0.1:0")
		if !strings.Contains(errOut, "kept in PostgreSQL") {
			t.Errorf("run without --store: %q", errOut)
		}
	})

	nodeA := startAdminNode(t, dirA, "127.0.0.1:0", fingerprint, "--store-file", dsnFile)
	urlA := "https://" + nodeA.listen
	step("deploy through the first admin node", func(t *testing.T) {
		cli.ok(t, password+"\n", "login", "--addr", urlA, "--ca-fingerprint", fingerprint, "--user", "admin", "--password-stdin")
		cli.ok(t, "", "group", "create", "payments")
		v1 := filepath.Join(work, "v1.yaml")
		writeFile(t, v1, pgDomainV1YAML)
		cli.ok(t, "", "config", "apply", "-f", v1, "--group", "payments")
		if out := cli.ok(t, "", "deploy", "--group", "payments", "-m", "first", "--no-wait"); !strings.HasPrefix(out, "deployed payments #1 ") {
			t.Fatalf("deploy said %q", out)
		}
	})

	bundle := filepath.Join(work, "e2e.ghk")
	passFile := writeSecretFile(t, filepath.Join(work, "pass"), "a long bundle passphrase")
	step("export the keys", func(t *testing.T) {
		out := cli.ok(t, "", "admin", "keys", "export", "--data-dir", dirA, "--to", bundle, "--passphrase-file", passFile)
		if !strings.Contains(out, "domain e2e") {
			t.Errorf("keys export said %q", out)
		}
		if m := permOf(t, bundle); m != 0o600 {
			t.Errorf("bundle: mode %v, want 0600", m)
		}
		data, _ := os.ReadFile(bundle)
		for _, name := range []string{"ca.key", "signing.key"} {
			key, _ := os.ReadFile(filepath.Join(dirA, name))
			block, _ := pem.Decode(key)
			if bytes.Contains(data, block.Bytes) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(block.Bytes)[:40])) {
				t.Errorf("the bundle holds %s in clear", name)
			}
		}
		cli.fail(t, "", "admin", "keys", "export", "--data-dir", dirA, "--to", bundle, "--passphrase-file", passFile)
	})

	dirB := filepath.Join(work, "b")
	step("refused bundles", func(t *testing.T) {
		wrongPass := writeSecretFile(t, filepath.Join(work, "wrong"), "not the bundle passphrase")
		_, errOut := cli.fail(t, "", "admin", "init", "--join", bundle, "--passphrase-file", wrongPass, "--store-file", dsnFile, "--data-dir", dirB)
		if !strings.Contains(errOut, "wrong passphrase") {
			t.Errorf("join with a wrong passphrase: %q", errOut)
		}
		// Another domain, in another database, with its own bundle.
		dsnO := writeSecretFile(t, filepath.Join(work, "dsn-other"), srv.Database(t)+" password="+pgDomainPassword)
		dirO := filepath.Join(work, "other")
		cli.ok(t, "", "admin", "init", "--data-dir", dirO, "--domain", "other", "--store-file", dsnO)
		otherBundle := filepath.Join(work, "other.ghk")
		cli.ok(t, "", "admin", "keys", "export", "--data-dir", dirO, "--to", otherBundle, "--passphrase-file", passFile)
		_, errOut = cli.fail(t, "", "admin", "init", "--join", otherBundle, "--passphrase-file", passFile, "--store-file", dsnFile, "--data-dir", dirB)
		if !strings.Contains(errOut, "key bundle is of domain other") || !strings.Contains(errOut, "refusing to join") {
			t.Errorf("join with another domain's bundle: %q", errOut)
		}
		if entries, _ := os.ReadDir(dirB); len(entries) != 0 {
			t.Errorf("a refused join left %d files in %s", len(entries), dirB)
		}
	})

	step("join", func(t *testing.T) {
		out := cli.ok(t, "", "admin", "init", "--join", bundle, "--passphrase-file", passFile, "--store-file", dsnFile, "--data-dir", dirB)
		if !strings.Contains(out, "Joined domain e2e") || !strings.Contains(out, fingerprint) || strings.Contains(out, "password") {
			t.Errorf("join said:\n%s", out)
		}
		for _, name := range []string{"ca.key", "ca.crt", "signing.key", "settings.key"} {
			a, _ := os.ReadFile(filepath.Join(dirA, name))
			b, err := os.ReadFile(filepath.Join(dirB, name))
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("%s of the joined node differs from the first's (%v)", name, err)
			}
		}
		for _, name := range []string{"ca.key", "signing.key", "settings.key"} {
			if m := permOf(t, filepath.Join(dirB, name)); m != 0o600 {
				t.Errorf("joined %s: mode %v, want 0600", name, m)
			}
		}
	})

	// The second admin node takes the connection string from the
	// environment, out of the process list.
	ready := filepath.Join(work, "ready-b.json")
	cmdB := exec.Command(binary, "admin", "run", "--data-dir", dirB, "--listen", "127.0.0.1:0", "--log-level", "debug", "--ready-file", ready)
	cmdB.Env = append(os.Environ(), "GATEHOUSE_STORE="+dsn)
	nodeB := startCmd(t, cmdB)
	nodeB.listen = nodeB.waitReadyFile(t, ready)["listen"]
	urlB := "https://" + nodeB.listen

	cliB := newAdminCLI(t, tr)
	step("the second admin node serves the domain and deploys", func(t *testing.T) {
		cliB.ok(t, password+"\n", "login", "--addr", urlB, "--ca-fingerprint", fingerprint, "--user", "admin", "--password-stdin")
		if out := cliB.ok(t, "", "group", "list"); !strings.Contains(out, "payments") {
			t.Errorf("group list through the second node:\n%s", out)
		}
		if out := cliB.ok(t, "", "deployments", "--group", "payments"); !strings.Contains(out, "first") {
			t.Errorf("deployments through the second node:\n%s", out)
		}
		v2 := filepath.Join(work, "v2.yaml")
		writeFile(t, v2, strings.Replace(pgDomainV1YAML, "9001", "9002", 1))
		cliB.ok(t, "", "config", "apply", "-f", v2, "--group", "payments")
		if out := cliB.ok(t, "", "deploy", "--group", "payments", "-m", "second", "--no-wait"); !strings.HasPrefix(out, "deployed payments #2 ") {
			t.Fatalf("deploy through the second node said %q", out)
		}
	})

	step("the deployment is signed with the domain's key", func(t *testing.T) {
		_, _, tokenA, _ := cli.saved(t)
		api := newAdminAPI(t, urlA, filepath.Join(dirA, "ca.crt"), tokenA)
		code, _, body := api.do(t, "GET", "/groups/payments/deployments/2", "")
		if code != http.StatusOK {
			t.Fatalf("GET deployment 2 through the first node: %d %s", code, body)
		}
		var d apitypes.Deployment
		if err := json.Unmarshal(body, &d); err != nil || d.Config == nil {
			t.Fatalf("deployment 2: %v %s", err, body)
		}
		sig, err := base64.StdEncoding.DecodeString(d.Signature)
		if err != nil {
			t.Fatal(err)
		}
		canonical, err := d.Config.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		dep := deploy.Deployment{Domain: "e2e", Group: d.Group, Number: d.Number, Checksum: d.Checksum, Config: canonical,
			Author: d.Author, Message: d.Message, CreatedAt: d.CreatedAt, Signature: sig}
		if !ed25519.Verify(signingPublicKey(t, dirA), dep.SigningBytes(), dep.Signature) {
			t.Errorf("deployment 2, made through the second node, does not verify with the first node's signing key")
		}
	})

	// A real node manager attached to the first admin node, its gateway
	// verifying deployments with the domain's key, applies what was
	// deployed through the second.
	step("a gateway applies a deployment made through the second admin node", func(t *testing.T) {
		up := startUpstream(t, "u1", nil)
		d := &nmDomain{work: t.TempDir(), url: urlA, fingerprint: fingerprint, caFile: filepath.Join(dirA, "ca.crt"),
			cli: cliB, instances: map[string][2]string{}}
		cliB.ok(t, "", "group", "create", nmGroup)
		d.joinNode(t)
		d.createInstance(t, "i1")
		n := d.deployTo(t, up.addr, "through the second admin node")
		d.startNode(t)
		d.waitLocal(t, "the gateway running deployment #1", d.appliedEverywhere(n))
		d.mustRouteTo(t, "u1", "i1")
	})

	step("each admin node has its own server certificate from the domain CA", func(t *testing.T) {
		caPEM, _ := os.ReadFile(filepath.Join(dirA, "ca.crt"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		serial := func(addr string) string {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
			if err != nil {
				t.Fatalf("TLS to %s with the domain CA: %v", addr, err)
			}
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
		}
		if serial(nodeA.listen) == serial(nodeB.listen) {
			t.Error("both admin nodes serve the same certificate")
		}
	})

	step("the database holds no gossip key in clear", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var doc []byte
		if err := conn.QueryRow(ctx, "SELECT doc FROM groups WHERE name = 'payments'").Scan(&doc); err != nil {
			t.Fatal(err)
		}
		var g struct {
			GossipKeys [][]byte `json:"gossip_keys"`
		}
		if err := json.Unmarshal(doc, &g); err != nil || len(g.GossipKeys) == 0 {
			t.Fatalf("group row %s: %v", doc, err)
		}
		for _, k := range g.GossipKeys {
			if len(k) == 32 {
				t.Errorf("a gossip key of 32 bytes, unsealed, in the database")
			}
		}
	})

	nodeA.signal(syscall.SIGINT)
	nodeB.signal(syscall.SIGINT)
	nodeA.exit(t, 15*time.Second)
	nodeB.exit(t, 15*time.Second)
	// The transcript repeats each command line, one of which has the
	// connection string on purpose: only what the commands printed counts.
	var printed []string
	for _, line := range strings.Split(tr.String(), "\n") {
		if !strings.HasPrefix(line, "$ gatehouse ") {
			printed = append(printed, line)
		}
	}
	for what, out := range map[string]string{"first admin node": nodeA.out.String(), "second admin node": nodeB.out.String(), "commands": strings.Join(printed, "\n")} {
		if strings.Contains(out, pgDomainPassword) {
			t.Errorf("the %s printed the database password", what)
		}
	}
}

// signingPublicKey reads the public half of dir's signing.key.
func signingPublicKey(t *testing.T, dir string) ed25519.PublicKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key.(ed25519.PrivateKey).Public().(ed25519.PublicKey)
}
