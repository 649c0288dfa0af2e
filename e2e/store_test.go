package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A gateway whose file is gone serves the configuration it stored.
func TestStartFromStoreWhenSourceUnavailable(t *testing.T) {
	up := startUpstream(t, "up", nil)
	dir := t.TempDir()
	data := filepath.Join(dir, "gw")
	cfg := filepath.Join(dir, "gateway.json")
	simpleConfig(t, cfg, up.addr)

	gw := startGateway(t, gatewayOpts{config: cfg, dataDir: data})
	gw.waitReady(t)
	sum := gw.report(t).Configuration.Checksum
	gw.signal(syscall.SIGTERM)
	if code := gw.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}

	os.Remove(cfg)
	gw = startGateway(t, gatewayOpts{config: cfg, dataDir: data})
	gw.waitReady(t)
	r := gw.report(t)
	if r.Configuration.Checksum != sum || !strings.HasPrefix(r.Configuration.Origin, "store:") {
		t.Fatalf("serving %+v, want the stored %s", r.Configuration, sum)
	}
	if code, body, _ := get(t, http.DefaultClient, "http://"+gw.listen+"/from-store"); code != 200 || body != "up GET /from-store" {
		t.Fatalf("stored configuration does not serve: %d %q", code, body)
	}
}

// A damaged store is set aside and reported; the file serves.
func TestCorruptStoreFallsBackToFile(t *testing.T) {
	up := startUpstream(t, "up", nil)
	dir := t.TempDir()
	data := filepath.Join(dir, "gw")
	os.MkdirAll(data, 0o700)
	if err := os.WriteFile(filepath.Join(data, "gateway.db"), []byte(strings.Repeat("garbage!", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gateway.json")
	simpleConfig(t, cfg, up.addr)

	gw := startGateway(t, gatewayOpts{config: cfg, dataDir: data})
	gw.waitReady(t)
	r := gw.report(t)
	if r.Store.SetAside == "" || !strings.HasPrefix(r.Configuration.Origin, "file:") {
		t.Fatalf("status = %+v, want the damaged store reported and the file served", r)
	}
	if kept, err := os.ReadFile(r.Store.SetAside); err != nil || !strings.HasPrefix(string(kept), "garbage!") {
		t.Fatalf("damaged store not kept at %s: %v", r.Store.SetAside, err)
	}
	if !strings.Contains(gw.out.String(), "damaged") {
		t.Errorf("the damage is not logged:\n%s", gw.out.String())
	}
	if code, _, _ := get(t, http.DefaultClient, "http://"+gw.listen+"/x"); code != 200 {
		t.Fatalf("file configuration does not serve: %d", code)
	}
}

// SIGTERM lets in-flight requests finish, then the gateway exits 0.
func TestGracefulShutdownDrains(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		var arrived atomic.Int32
		// The upstream answers only once the gateway drains, so that the
		// requests are in flight when the signal comes however slow the
		// machine is.
		release := make(chan struct{})
		up := startUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
			arrived.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			w.Write([]byte("finished"))
		})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		simpleConfig(t, cfg, up.addr)
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)

		type result struct {
			code int
			body string
			err  error
		}
		results := make(chan result, 5)
		for i := 0; i < 5; i++ {
			go func() {
				resp, err := http.Get("http://" + gw.listen + "/slow")
				if err != nil {
					results <- result{err: err}
					return
				}
				defer resp.Body.Close()
				b := make([]byte, 64)
				n, _ := resp.Body.Read(b)
				results <- result{code: resp.StatusCode, body: string(b[:n])}
			}()
		}
		gw.waitFor(t, 10*time.Second, "the requests to reach the upstream", func() bool { return arrived.Load() == 5 })
		gw.signal(syscall.SIGTERM)
		gw.waitFor(t, 10*time.Second, "the gateway draining", func() bool { return strings.Contains(gw.out.String(), "draining") })
		close(release)
		for i := 0; i < 5; i++ {
			r := <-results
			if r.err != nil || r.code != 200 || r.body != "finished" {
				t.Errorf("in-flight request: %+v", r)
			}
		}
		if code := gw.exit(t, 15*time.Second); code != 0 {
			t.Fatalf("exit code %d after SIGTERM", code)
		}
	})
}
