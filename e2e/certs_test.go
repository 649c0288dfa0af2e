package e2e

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/pki"
)

// Certificates renewed while a node manager heartbeats every second and
// its gateway serves: the lifetimes and the run's length come from the
// environment, so that the same test runs short in CI (a 30 s life over
// 90 s: four renewals of the node's and the admin node's certificates)
// and long by hand:
//
//	GATEHOUSE_E2E_CERT_TTL=2m GATEHOUSE_E2E_CERT_RUN=10m go test -count=1 -timeout 20m -run TestCertRenewalNoGap ./e2e/
func TestCertRenewalNoGap(t *testing.T) {
	ttl := envDuration(t, "GATEHOUSE_E2E_CERT_TTL", 30*time.Second)
	run := envDuration(t, "GATEHOUSE_E2E_CERT_RUN", 90*time.Second)
	up := startUpstream(t, "up", nil)
	d := newNMDomain(t, "--node-cert-ttl", ttl.String(), "--server-cert-ttl", ttl.String())
	d.joinNode(t)
	d.createInstance(t, "i1")
	d.deployTo(t, up.addr, "first")
	d.startNode(t)
	d.waitLocal(t, "i1 running deployment #1", d.appliedEverywhere(1))
	joined := nodeJoinedAt(t, d.nodeDir)

	w := watchNode(t, d, "i1")
	began := time.Now()
	waitfor.Holds(t, run, "heartbeats and requests without a failure", w.healthy)
	w.stop(t)

	// Renewal starts at two thirds of a life: a run of n lives renews
	// about 1.5 n times; fewer than n would mean renewal stalled.
	want := int(run / ttl)
	nodeRenewals := strings.Count(d.node.out.String(), "node certificate renewed")
	serverRenewals := strings.Count(d.admin.out.String(), "server certificate renewed")
	if nodeRenewals < want || serverRenewals < want {
		t.Errorf("over %s with %s certificates: %d node and %d server renewals, want at least %d each", run, ttl, nodeRenewals, serverRenewals, want)
	}
	if got := nodeJoinedAt(t, d.nodeDir); !got.Equal(joined) {
		t.Errorf("the node joined again: %s, first at %s", got, joined)
	}
	cert := readCert(t, filepath.Join(d.nodeDir, "node.crt"))
	if life := cert.NotAfter.Sub(cert.NotBefore); life > ttl+ttl/10+time.Second {
		t.Errorf("node certificate lives %s, want %s (and a tenth backdated)", life, ttl)
	}
	t.Logf("%s with %s certificates: %d node and %d admin server renewals, %d heartbeats, none failed, longest heartbeat interval %s, %d requests through the gateway, none failed",
		time.Since(began).Round(time.Second), ttl, nodeRenewals, serverRenewals, w.beats, w.longest.Round(10*time.Millisecond), w.requests)
}

// A CA rotation while a node manager heartbeats and its gateway serves:
// the node fetches the new trust bundle, renews from the new root, the
// previous root is retired, and through it all no heartbeat fails, no
// request fails and the node never joins again.
func TestCARotationNoRejoin(t *testing.T) {
	up := startUpstream(t, "up", nil)
	d := newNMDomain(t)
	d.joinNode(t)
	d.createInstance(t, "i1")
	d.deployTo(t, up.addr, "first")
	d.startNode(t)
	d.waitLocal(t, "i1 running deployment #1", d.appliedEverywhere(1))
	joined := nodeJoinedAt(t, d.nodeDir)

	w := watchNode(t, d, "i1")
	var st apitypes.CAStatus
	d.cli.json(t, &st, "ca", "rotate")
	if !st.Rotating || st.Fingerprint != d.fingerprint || st.Issuer == d.fingerprint || len(st.Roots) != 2 {
		t.Fatalf("ca rotate: %+v", st)
	}
	newRoot := st.Issuer
	waitfor.Cond(t, 30*time.Second, "the node renewed from the new root", func() (bool, string) {
		bundle, err := os.ReadFile(filepath.Join(d.nodeDir, "ca.crt"))
		if err != nil {
			return false, err.Error()
		}
		roots := pki.ParseBundle(bundle)
		cert := readCert(t, filepath.Join(d.nodeDir, "node.crt"))
		for _, r := range roots {
			if pki.Fingerprint(r) == newRoot && cert.CheckSignatureFrom(r) == nil {
				return len(roots) == 2, fmt.Sprintf("%d roots trusted", len(roots))
			}
		}
		return false, fmt.Sprintf("node.crt from %q, %d roots trusted", cert.Issuer.CommonName, len(roots))
	})
	waitfor.Cond(t, 10*time.Second, "no host pending", func() (bool, string) {
		d.cli.json(t, &st, "ca", "show")
		return len(st.Pending) == 0, fmt.Sprint("pending ", st.Pending)
	})
	d.cli.json(t, &st, "ca", "retire")
	if st.Rotating || len(st.Roots) != 1 || st.Fingerprint != newRoot {
		t.Fatalf("ca retire: %+v", st)
	}
	waitfor.Cond(t, 10*time.Second, "the node trusts the new root alone", func() (bool, string) {
		bundle, _ := os.ReadFile(filepath.Join(d.nodeDir, "ca.crt"))
		roots := pki.ParseBundle(bundle)
		return len(roots) == 1 && pki.Fingerprint(roots[0]) == newRoot, fmt.Sprintf("%d roots", len(roots))
	})
	// Heartbeats over the new server certificate, a few periods' worth.
	after := w.count()
	waitfor.Cond(t, 10*time.Second, "heartbeats after the retirement", func() (bool, string) {
		return w.count() >= after+3, fmt.Sprint(w.count()-after, " heartbeats")
	})
	w.stop(t)
	if got := nodeJoinedAt(t, d.nodeDir); !got.Equal(joined) {
		t.Errorf("the node joined again: %s, first at %s", got, joined)
	}
	if !strings.Contains(d.admin.out.String(), "server certificate re-issued") {
		t.Error("the admin node did not re-issue its certificate from the new root")
	}
	// The CLI pinned the previous root: it connects again trusting the
	// new one (as a new login would pin it).
	out, _, code := d.cli.run(t, "", "ca", "show")
	if code == 0 {
		t.Errorf("a CLI pinned to the retired root still connects:\n%s", out)
	}
	newCA := filepath.Join(d.work, "new-ca.crt")
	bundle, err := os.ReadFile(filepath.Join(d.nodeDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, newCA, string(bundle))
	d.cli.json(t, &st, "--ca-cert", newCA, "ca", "show")
	if st.Rotating || st.Fingerprint != newRoot || len(st.Pending) != 0 {
		t.Errorf("ca show trusting the new root: %+v", st)
	}
	t.Logf("rotation and retirement: %d heartbeats, none failed, longest interval %s; %d requests, none failed",
		w.beats, w.longest.Round(10*time.Millisecond), w.requests)
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, s)
	}
	return v
}

func nodeJoinedAt(t *testing.T, dir string) time.Time {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), `"joined_at": "`)
	if i < 0 {
		t.Fatalf("node.json has no joined_at: %s", data)
	}
	at, err := time.Parse(time.RFC3339Nano, strings.SplitN(string(data[i+len(`"joined_at": "`):]), `"`, 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// nodeWatch polls a node manager's heartbeat counters and sends requests
// through an instance's gateway for as long as it runs, recording the
// first failure of either and the longest time between two successful
// heartbeats.
type nodeWatch struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	fail    string
	beats   int
	longest time.Duration
	// requests counts the requests that went through the gateway.
	requests int
}

// maxBeatInterval is the longest time allowed between two successful
// heartbeats of a node manager beating every second, as seen by polling
// its counters every 200 ms on a loaded machine: a failed handshake or a
// renewal blocking them would exceed it, and it stays well below the
// admin node's 30 s before an instance is Lost Connection.
const maxBeatInterval = 5 * time.Second

func watchNode(t *testing.T, d *nmDomain, instance string) *nodeWatch {
	w := &nodeWatch{done: make(chan struct{})}
	failf := func(format string, args ...any) {
		w.mu.Lock()
		if w.fail == "" {
			w.fail = fmt.Sprintf(format, args...)
		}
		w.mu.Unlock()
	}
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		last, lastAt := -1, time.Now()
		for {
			ok, failed, err := heartbeatCounts(d.nodeAddr)
			now := time.Now()
			switch {
			case err != nil:
				failf("read the node manager's metrics: %v", err)
			case failed > 0:
				failf("%d heartbeats failed", failed)
			case ok != last:
				w.mu.Lock()
				if last >= 0 {
					w.longest = max(w.longest, now.Sub(lastAt))
				}
				w.beats = ok
				w.mu.Unlock()
				last, lastAt = ok, now
			case now.Sub(lastAt) > maxBeatInterval:
				failf("no heartbeat for %s", now.Sub(lastAt).Round(time.Millisecond))
			}
			select {
			case <-w.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	go func() {
		defer w.wg.Done()
		for {
			if _, err := d.through(instance, "/"); err != nil {
				failf("request through %s: %v", instance, err)
			} else {
				w.mu.Lock()
				w.requests++
				w.mu.Unlock()
			}
			select {
			case <-w.done:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *nodeWatch) halt() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}

// healthy reports the first failure seen, if any.
func (w *nodeWatch) healthy() (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fail == "", w.fail
}

func (w *nodeWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.beats
}

// stop ends the watch and fails t with its first failure.
func (w *nodeWatch) stop(t *testing.T) {
	t.Helper()
	w.halt()
	if w.fail != "" {
		t.Fatal(w.fail)
	}
	if w.beats == 0 || w.requests == 0 {
		t.Fatalf("watched %d heartbeats and %d requests", w.beats, w.requests)
	}
}

// heartbeatCounts reads gatehouse_node_heartbeats_total from a node
// manager's local API.
func heartbeatCounts(addr string) (ok, failed int, err error) {
	resp, err := noKeepAlive.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for label, into := range map[string]*int{`result="ok"`: &ok, `result="error"`: &failed} {
			if strings.HasPrefix(line, metrics.NodeHeartbeats+"{"+label+"} ") {
				f, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				*into = int(f)
			}
		}
	}
	return ok, failed, sc.Err()
}

// The roots of a rotation are the store's: an admin node restarted during
// the overlap still presents the previous root and trusts both, and one
// restarted after the retirement presents the new root, its data dir's
// ca.crt (the root of admin init) notwithstanding.
func TestCARotationSurvivesRestart(t *testing.T) {
	d := newNMDomain(t)
	var st apitypes.CAStatus
	d.cli.json(t, &st, "ca", "rotate")
	newRoot := st.Issuer
	restart := func(fingerprint string) {
		t.Helper()
		d.admin.signal(syscall.SIGTERM)
		if code := d.admin.exit(t, 15*time.Second); code != 0 {
			t.Fatalf("admin node exited %d", code)
		}
		d.admin = startAdminNode(t, d.adminDir, d.adminAddr, fingerprint)
	}
	restart(d.fingerprint)
	d.cli.json(t, &st, "ca", "show")
	if !st.Rotating || st.Issuer != newRoot || st.Fingerprint != d.fingerprint || len(st.Roots) != 2 {
		t.Fatalf("after a restart during the overlap: %+v", st)
	}
	d.cli.json(t, &st, "ca", "retire")
	restart(newRoot)
}
