package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// backupDomain is a domain made by the binary for the backup tests: its
// data dir, admin node and a logged-in CLI.
type backupDomain struct {
	dir, fingerprint, password string
	dsnFile                    string
	admin                      *proc
	cli                        *adminCLI
}

// newBackupDomain initialises domain e2e in dir, in PostgreSQL when
// dsnFile is set, starts its admin node (with runArgs) and logs in.
func newBackupDomain(t *testing.T, dir, dsnFile string, runArgs ...string) *backupDomain {
	t.Helper()
	d := &backupDomain{dir: dir, dsnFile: dsnFile, cli: newAdminCLI(t, &transcript{})}
	args := []string{"admin", "init", "--data-dir", dir, "--domain", "e2e"}
	if dsnFile != "" {
		args = append(args, "--store-file", dsnFile)
	}
	out := d.cli.ok(t, "", args...)
	m := regexp.MustCompile(`Generated password for admin \(shown once\): (\S+)`).FindStringSubmatch(out)
	f := regexp.MustCompile(`Node managers pin this CA: (SHA256:[0-9a-fA-F]{64})\n`).FindStringSubmatch(out)
	if m == nil || f == nil {
		t.Fatalf("admin init said:\n%s", out)
	}
	d.password, d.fingerprint = m[1], f[1]
	d.start(t, d.dir, d.dsnFile, runArgs...)
	return d
}

// start runs the admin node of dir (in PostgreSQL when dsnFile is set)
// and logs the CLI in to it.
func (d *backupDomain) start(t *testing.T, dir, dsnFile string, extra ...string) {
	t.Helper()
	if dsnFile != "" {
		extra = append(extra, "--store-file", dsnFile)
	}
	d.admin = startAdminNode(t, dir, "127.0.0.1:0", d.fingerprint, extra...)
	d.cli.ok(t, d.password+"\n", "login", "--addr", "https://"+d.admin.listen, "--ca-fingerprint", d.fingerprint,
		"--user", "admin", "--password-stdin")
}

func (d *backupDomain) stop(t *testing.T) {
	t.Helper()
	d.admin.signal(syscall.SIGTERM)
	if code := d.admin.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("admin node exited %d", code)
	}
}

// backupOut is what gatehouse admin backup -o json prints.
type backupOut struct {
	Name     string         `json:"name"`
	URL      string         `json:"url"`
	Size     int64          `json:"size"`
	SHA256   string         `json:"sha256"`
	Domain   string         `json:"domain"`
	TakenAt  time.Time      `json:"taken_at"`
	Records  int            `json:"records"`
	Counts   map[string]int `json:"counts"`
	Checksum string         `json:"checksum"`
}

// domainState is what a restored domain must show as the original did, read
// through the CLI.
type domainState struct {
	Groups      json.RawMessage
	Deployments []apitypes.Deployment
	Users       json.RawMessage
	Bindings    json.RawMessage
	Env         json.RawMessage
	Audit       []apitypes.AuditEntry
}

func (d *backupDomain) state(t *testing.T) domainState {
	t.Helper()
	var s domainState
	raw := func(args ...string) json.RawMessage {
		return json.RawMessage(d.cli.ok(t, "", append(args, "-o", "json")...))
	}
	s.Groups = raw("group", "list")
	d.cli.json(t, &s.Deployments, "deployments", "--group", "payments")
	s.Users = raw("user", "list")
	s.Bindings = raw("role", "bindings")
	s.Env = raw("env", "get", "prod")
	d.cli.json(t, &s.Audit, "audit", "--limit", "1000")
	return s
}

// Backups taken while deploys and audit entries are written, from a bbolt
// and from a PostgreSQL admin node, restore into an empty bbolt data dir
// and an empty PostgreSQL database: the restored domain serves the same
// groups, deployments (verified by the CLI's signature check on rollback),
// users, bindings and environments, and the audit log up to the backup.
// A tampered or foreign backup and a non-empty store are refused.
func TestBackupRestoreWhileWritten(t *testing.T) {
	srv := startPostgres(t)
	for _, from := range []string{"bbolt", "postgres"} {
		t.Run("from "+from, func(t *testing.T) {
			work := t.TempDir()
			var dsnFile string
			if from == "postgres" {
				dsnFile = writeSecretFile(t, filepath.Join(work, "dsn"), srv.Database(t)+" password="+pgDomainPassword)
			}
			d := newBackupDomain(t, filepath.Join(work, "orig"), dsnFile)
			d.cli.ok(t, "", "group", "create", "payments")
			v1 := filepath.Join(work, "v1.yaml")
			writeFile(t, v1, pgDomainV1YAML)
			d.cli.ok(t, "", "config", "apply", "-f", v1, "--group", "payments")
			d.cli.ok(t, "", "deploy", "--group", "payments", "-m", "first", "--no-wait")
			d.cli.ok(t, "bob-password-1234\n", "user", "create", "bob", "--password-stdin")
			d.cli.ok(t, "", "role", "bind", "--user", "bob", "--role", "deployer", "--group", "payments")
			d.cli.ok(t, "", "env", "set", "prod", "HOST=a.example", "PORT=8443")
			d.cli.ok(t, "s3cret-value\n", "env", "secret", "set", "prod", "TOKEN", "--value-stdin")

			// A writer deploys and edits all along: each call is audited.
			var stop atomic.Bool
			var wg sync.WaitGroup
			var writes atomic.Int64
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					out, errOut, code := d.cli.run(t, "", "env", "set", "prod", fmt.Sprintf("N=%d", i))
					if code == 0 {
						out, errOut, code = d.cli.run(t, "", "deploy", "--group", "payments", "-m", fmt.Sprint("w", i), "--no-wait", "--force")
					}
					if code != 0 {
						t.Errorf("writer: exit %d: %s %s", code, out, errOut)
						return
					}
					writes.Add(1)
				}
			})
			bdir := filepath.Join(work, "backups")
			if from == "bbolt" {
				// A location that cannot be written, and a user without
				// backup:create: exit 1, naming what failed.
				notDir := filepath.Join(work, "not-a-dir")
				writeFile(t, notDir, "x")
				_, errOut := d.cli.fail(t, "", "admin", "backup", "--to", "file://"+notDir+"/sub")
				if !strings.Contains(errOut, "--to") || !strings.Contains(errOut, "not a directory") {
					t.Errorf("backup to a file: %q", errOut)
				}
				d.cli.ok(t, "", "role", "bind", "--user", "bob", "--role", "viewer", "--domain")
				bob := newAdminCLI(t, &transcript{})
				bob.ok(t, "bob-password-1234\n", "login", "--addr", "https://"+d.admin.listen, "--ca-fingerprint", d.fingerprint,
					"--user", "bob", "--password-stdin")
				_, errOut = bob.fail(t, "", "admin", "backup", "--to", "file://"+bdir)
				if !strings.Contains(errOut, "backup:create") {
					t.Errorf("backup by a viewer: %q", errOut)
				}
				if entries, _ := os.ReadDir(bdir); len(entries) != 0 {
					t.Errorf("failed backups left %d files in %s", len(entries), bdir)
				}
			}
			var b []backupOut
			waitUntil := time.Now().Add(nmDeadline)
			for len(b) < 2 || writes.Load() < 2 {
				if time.Now().After(waitUntil) || t.Failed() {
					t.Fatalf("writer made %d writes, %d backups taken", writes.Load(), len(b))
				}
				var o backupOut
				d.cli.json(t, &o, "admin", "backup", "--to", "file://"+bdir)
				b = append(b, o)
			}
			stop.Store(true)
			wg.Wait()
			last := b[len(b)-1]
			if !strings.HasPrefix(last.Name, "e2e-") || last.URL != "file://"+bdir+"/"+last.Name || last.Counts["deployment"] < 1 || last.Domain != "e2e" {
				t.Fatalf("backup said %+v", last)
			}
			if fi, err := os.Stat(filepath.Join(bdir, last.Name)); err != nil || fi.Size() != last.Size {
				t.Fatalf("backup object %s: %v (size %d, printed %d)", last.Name, err, sizeOf(fi), last.Size)
			}
			// Listing sorts by time.
			names, _ := filepath.Glob(filepath.Join(bdir, "e2e-*.ghbackup"))
			if len(names) != len(b) || filepath.Base(names[len(names)-1]) != last.Name {
				t.Errorf("backups %v, the last taken %s", names, last.Name)
			}
			want := d.state(t)
			d.stop(t)

			for _, into := range []string{"bbolt", "postgres"} {
				t.Run("into "+into, func(t *testing.T) {
					dir := filepath.Join(work, "restored-"+into)
					copyKeys(t, d.dir, dir)
					args := []string{"admin", "restore", "--from", last.URL, "--data-dir", dir}
					var intoDSN string
					if into == "postgres" {
						intoDSN = writeSecretFile(t, filepath.Join(work, "dsn-"+into), srv.Database(t)+" password="+pgDomainPassword)
						args = append(args, "--store-file", intoDSN)
					}
					out := d.cli.ok(t, "", args...)
					if !strings.Contains(out, "Restored domain e2e") || !strings.Contains(out, last.Checksum) || strings.Contains(out, pgDomainPassword) {
						t.Errorf("restore said %q", out)
					}
					// Into a store that now holds the domain: refused.
					_, errOut := d.cli.fail(t, "", args...)
					if !strings.Contains(errOut, "already holds a domain") && !strings.Contains(errOut, "not empty") {
						t.Errorf("second restore into the same store: %q", errOut)
					}
					d.start(t, dir, intoDSN)
					got := d.state(t)
					checkRestored(t, got, want, last)
					// The restored domain deploys on from there, signed
					// by the same key: the CLI verifies what it shows.
					out = d.cli.ok(t, "", "deploy", "--group", "payments", "-m", "after restore", "--no-wait", "--force")
					if wantN := got.Deployments[0].Number + 1; !strings.HasPrefix(out, fmt.Sprintf("deployed payments #%d ", wantN)) {
						t.Errorf("deploy after restore said %q, want #%d", out, wantN)
					}
					d.stop(t)
				})
			}

			t.Run("refusals", func(t *testing.T) {
				tampered := filepath.Join(bdir, "tampered.ghbackup")
				writeGzipEdit(t, filepath.Join(bdir, last.Name), tampered, `"name":"bob"`, `"name":"eve"`)
				dir := filepath.Join(work, "refused")
				copyKeys(t, d.dir, dir)
				_, errOut := d.cli.fail(t, "", "admin", "restore", "--from", "file://"+tampered, "--data-dir", dir)
				if !strings.Contains(errOut, "damaged or edited") || !strings.Contains(errOut, "nothing was restored") {
					t.Errorf("tampered backup: %q", errOut)
				}
				// A backup of another domain named e2e, with its own keys.
				other := newBackupDomain(t, filepath.Join(work, "other"), "")
				var ob backupOut
				other.cli.json(t, &ob, "admin", "backup", "--to", "file://"+filepath.Join(work, "other-backups"))
				other.stop(t)
				_, errOut = d.cli.fail(t, "", "admin", "restore", "--from", ob.URL, "--data-dir", dir)
				if !strings.Contains(errOut, "backup of another domain") {
					t.Errorf("foreign backup: %q", errOut)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 4 {
					t.Errorf("refused restores left %d files in the data dir, want the 4 keys", len(entries))
				}
			})
		})
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}

// checkRestored compares a restored domain's state with the original's
// at the time of the backup.
func checkRestored(t *testing.T, got, want domainState, b backupOut) {
	t.Helper()
	for _, c := range []struct {
		what      string
		got, want json.RawMessage
	}{
		{"groups", got.Groups, want.Groups},
		{"users", got.Users, want.Users},
		{"bindings", got.Bindings, want.Bindings},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("restored %s:\n%s\nwant\n%s", c.what, c.got, c.want)
		}
	}
	if len(got.Env) == 0 || !strings.Contains(string(got.Env), `"HOST": "a.example"`) && !strings.Contains(string(got.Env), `"HOST":"a.example"`) {
		t.Errorf("restored environment prod: %s", got.Env)
	}
	if len(got.Deployments) != b.Counts["deployment"] {
		t.Fatalf("restored %d deployments, the backup holds %d", len(got.Deployments), b.Counts["deployment"])
	}
	// The backup was taken before the last writes: the restored history
	// is the original's up to its newest restored deployment.
	byNumber := map[uint64]apitypes.Deployment{}
	for _, dep := range want.Deployments {
		byNumber[dep.Number] = dep
	}
	for _, dep := range got.Deployments {
		o, ok := byNumber[dep.Number]
		if !ok || o.Checksum != dep.Checksum || o.Signature != dep.Signature || o.Message != dep.Message {
			t.Errorf("restored deployment %d %+v, the original %+v", dep.Number, dep, o)
		}
	}
	// Audit: a prefix of the original's, the restore's own entries aside.
	orig := map[uint64]apitypes.AuditEntry{}
	for _, e := range want.Audit {
		orig[e.Seq] = e
	}
	n := 0
	for _, e := range got.Audit {
		if e.Seq > uint64(b.Counts["audit"]) {
			continue
		}
		n++
		if o := orig[e.Seq]; o.Action != e.Action || o.User != e.User || !o.Time.Equal(e.Time) {
			t.Errorf("restored audit entry %d %+v, the original %+v", e.Seq, e, o)
		}
	}
	if n != b.Counts["audit"] {
		t.Errorf("restored %d audit entries up to the backup, it holds %d", n, b.Counts["audit"])
	}
}

// copyKeys copies the domain's key files to a new data dir, as an
// operator restoring on a new machine does.
func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.crt", "ca.key", "signing.key", "settings.key"} {
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// writeGzipEdit writes a copy of the gzip file from to to, with old
// replaced by new in its content: a backup edited by someone without the
// signing key.
func writeGzipEdit(t *testing.T, from, to, old, new string) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(text, []byte(old)) {
		t.Fatalf("%s holds no %s", from, old)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(bytes.Replace(text, []byte(old), []byte(new), 1))
	zw.Close()
	if err := os.WriteFile(to, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// After a restore from a backup older than what the gateways run, they
// keep serving what they run (the node manager passes them the restored
// domain's older deployment, which they refuse as older), and the next
// deploy is numbered above what they report: every gateway applies it.
func TestRestoreOlderBackupNumbersAbove(t *testing.T) {
	up1 := startUpstream(t, "u1", nil)
	up2 := startUpstream(t, "u2", nil)
	up3 := startUpstream(t, "u3", nil)
	d := setUpNode(t, up1, "gw-a", "gw-b")
	var b backupOut
	d.cli.json(t, &b, "admin", "backup", "--to", "file://"+filepath.Join(d.work, "backups"))
	if b.Counts["deployment"] != 1 {
		t.Fatalf("backup holds %d deployments, want 1", b.Counts["deployment"])
	}
	for i, up := range []*upstream{up2, up3} {
		if n := d.deployTo(t, up.addr, "after the backup"); n != uint64(i+2) {
			t.Fatalf("deployment #%d, want #%d", n, i+2)
		}
	}
	d.waitLocal(t, "every instance running deployment #3", d.appliedEverywhere(3))

	d.admin.signal(syscall.SIGTERM)
	d.admin.exit(t, 15*time.Second)
	dir := filepath.Join(d.work, "restored")
	copyKeys(t, d.adminDir, dir)
	d.cli.ok(t, "", "admin", "restore", "--from", b.URL, "--data-dir", dir)
	d.adminDir = dir
	d.admin = startAdminNode(t, dir, d.adminAddr, d.fingerprint)

	until(t, "the restored admin node hears that the gateways run #3", func() (bool, string) {
		ins := d.adminInstances(t)
		ok := len(ins) == 2
		for _, in := range ins {
			ok = ok && in.Observed != nil && in.Observed.AppliedDeployment == 3
		}
		b, _ := json.Marshal(ins)
		return ok, string(b)
	})
	// The restored domain's current deployment is #1: the node manager
	// passes it on and the gateways refuse it, serving #3 all along.
	d.mustRouteTo(t, "u3", "gw-a", "gw-b")
	if n := d.deployTo(t, up2.addr, "after the restore"); n != 4 {
		t.Fatalf("first deployment after the restore is #%d, want #4 (above the #3 the gateways run)", n)
	}
	d.waitLocal(t, "every instance running deployment #4", d.appliedEverywhere(4))
	d.mustRouteTo(t, "u2", "gw-a", "gw-b")
}

// An admin node run with --backup-to takes a backup every interval and
// keeps exactly --backup-keep of them; a location that fails shows in
// gatehouse status (with an attention line) and in the Prometheus
// metrics, and recovers when the location does.
func TestScheduledBackups(t *testing.T) {
	work := t.TempDir()
	bdir := filepath.Join(work, "backups")
	d := newBackupDomain(t, filepath.Join(work, "admin"), "", "--backup-to", "file://"+bdir, "--backup-interval", "1s", "--backup-keep", "2")
	var o apitypes.Overview
	status := func() {
		// A fresh value each time: fields left out of the JSON must not
		// keep an earlier answer's values.
		o = apitypes.Overview{}
		d.cli.json(t, &o, "status")
	}
	until(t, "four scheduled backups stored", func() (bool, string) {
		status()
		b, _ := json.Marshal(o.Backups)
		return o.Backups != nil && o.Backups.Successes >= 4 && o.Backups.Running && o.Backups.Kept == 2, string(b)
	})
	names, _ := filepath.Glob(filepath.Join(bdir, "*.ghbackup"))
	if len(names) != 2 {
		t.Errorf("the location holds %d backups, want --backup-keep 2: %v", len(names), names)
	}
	out := d.cli.ok(t, "", "status")
	if !strings.Contains(out, "Backups to file://"+bdir+" every 1s, keeping 2") {
		t.Errorf("status says nothing of the backups:\n%s", out)
	}
	_, _, token, caCert := d.cli.saved(t)
	caFile := filepath.Join(work, "ca.crt")
	writeFile(t, caFile, caCert)
	api := newAdminAPI(t, "https://"+d.admin.listen, caFile, token)
	metric := func(name string) string {
		code, _, body := api.do(t, "GET", "/metrics/prometheus", "")
		if code != 200 {
			t.Fatalf("GET /metrics/prometheus: %d %s", code, body)
		}
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(string(body))
		if m == nil {
			return ""
		}
		return m[1]
	}
	if v := metric(`gatehouse_admin_backups_total{result="ok"}`); v == "" || v == "0" {
		t.Errorf("gatehouse_admin_backups_total ok = %q", v)
	}

	// The location turns into a file: nothing can be stored under it.
	if err := os.RemoveAll(bdir); err != nil {
		t.Fatal(err)
	}
	writeFile(t, bdir, "not a directory")
	until(t, "failing backups in status", func() (bool, string) {
		status()
		failing := false
		for _, at := range o.Attention {
			failing = failing || at.Kind == apitypes.AttentionBackupFailing
		}
		b, _ := json.Marshal(o.Backups)
		return failing && o.Backups.Failures >= 1 && o.Backups.LastError != "", string(b)
	})
	if v := metric(`gatehouse_admin_backups_total{result="error"}`); v == "" || v == "0" {
		t.Errorf("gatehouse_admin_backups_total error = %q", v)
	}
	if v := metric("gatehouse_admin_backup_last_failure_timestamp_seconds"); v == "" || v == "0" {
		t.Errorf("gatehouse_admin_backup_last_failure_timestamp_seconds = %q", v)
	}
	if out, _, code := d.cli.run(t, "", "status"); code != 0 || !strings.Contains(out, "FAILING since") || !strings.Contains(out, "not a directory") {
		t.Errorf("status of failing backups (exit %d):\n%s", code, out)
	}

	if err := os.Remove(bdir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(bdir, 0o700); err != nil {
		t.Fatal(err)
	}
	until(t, "backups stored again", func() (bool, string) {
		status()
		b, _ := json.Marshal(o.Backups)
		return o.Backups.LastError == "" && o.Backups.Kept == 2, string(b)
	})
}
