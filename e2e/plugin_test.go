package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

// buildPlugin builds examples/policy-plugin into dir as name.
func buildPlugin(t *testing.T, dir, name string) {
	t.Helper()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "github.com/gatehouse/gatehouse/examples/policy-plugin").CombinedOutput()
	if err != nil {
		t.Fatalf("build the example plugin: %v\n%s", err, out)
	}
}

// childrenNamed lists the pids of parent's children whose command is name.
func childrenNamed(parent int, name string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < 0 || !strings.HasPrefix(name, s[open+1:end]) {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func sign(secret, method, path string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + "\n" + path + "\n"))
	return hex.EncodeToString(m.Sum(nil))
}

// The example plugin, built and loaded by a real gateway on both engines:
// it lets signed requests through and refuses the others; killed with
// SIGKILL mid-traffic, the gateway keeps serving, the closed route answers
// 503 and the open one lets (unsigned) requests through while it is down,
// and the plugin comes back under a new process.
func TestExternalPluginKilledMidTraffic(t *testing.T) {
	plugins := t.TempDir()
	buildPlugin(t, plugins, "signature-check")
	forEachEngine(t, func(t *testing.T, engine string) {
		up := startUpstream(t, "api", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("verified=" + r.Header.Get("X-Signature-Verified")))
		})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		external := func(mode string) deploy.Policy {
			return deploy.Policy{Name: "external", Config: map[string]any{
				"plugin": "signature-check", "failure_mode": mode, "timeout": "2s",
				"config": map[string]any{"secret": "s3cret"}}}
		}
		writeConfig(t, cfg, deploy.Config{
			Upstreams: []deploy.Upstream{{Name: "api", Targets: []deploy.Target{{Address: up.addr}}}},
			Services: []deploy.Service{{Name: "api", Upstream: "api", Routes: []deploy.Route{
				{Name: "closed", Paths: []string{"/closed/*"}, Policies: []deploy.Policy{external("closed")}},
				{Name: "open", Paths: []string{"/open/*"}, Policies: []deploy.Policy{external("open")}},
			}}},
		})
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw"),
			extra: []string{"--plugin-dir", plugins}})
		gw.waitReady(t)
		base := "http://" + gw.listen

		code, body, _ := get(t, http.DefaultClient, base+"/closed/a", "X-Signature", sign("s3cret", "GET", "/closed/a"))
		if code != 200 || body != "verified=true" {
			t.Fatalf("signed request: %d %q", code, body)
		}
		if code, body, _ = get(t, http.DefaultClient, base+"/closed/a", "X-Signature", sign("wrong", "GET", "/closed/a")); code != 401 {
			t.Fatalf("badly signed request: %d %q", code, body)
		}

		// One plugin process per binary and plugin configuration: the two
		// routes share it.
		var before []int
		gw.waitFor(t, 10*time.Second, "the plugin process", func() bool {
			before = childrenNamed(gw.cmd.Process.Pid, "signature-check")
			return len(before) == 1
		})

		// Traffic on both routes while the plugins are killed.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[string]int{}
		for _, route := range []string{"closed", "open"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := "/" + route + "/x"
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest("GET", base+path, nil)
					// Unsigned on the open route: refused while the
					// plugin answers, let through while it is down.
					if route == "closed" {
						req.Header.Set("X-Signature", sign("s3cret", "GET", path))
					}
					resp, err := http.DefaultClient.Do(req)
					mu.Lock()
					if err != nil {
						counts[route+" error"]++
					} else {
						counts[route+" "+strconv.Itoa(resp.StatusCode)]++
						resp.Body.Close()
					}
					mu.Unlock()
				}
			}()
		}
		seen := func(keys ...string) func() bool {
			return func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, k := range keys {
					if counts[k] == 0 {
						return false
					}
				}
				return true
			}
		}
		gw.waitFor(t, 10*time.Second, "traffic through the plugin", seen("closed 200", "open 401"))
		// The binary is moved away so that the plugin stays down for a
		// while (its restarts fail) instead of coming back at once.
		bin := filepath.Join(plugins, "signature-check")
		if err := os.Rename(bin, bin+".away"); err != nil {
			t.Fatal(err)
		}
		for _, pid := range before {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		gw.waitFor(t, 20*time.Second, "both failure modes while the plugin is down", seen("closed 503", "open 200"))
		if err := os.Rename(bin+".away", bin); err != nil {
			t.Fatal(err)
		}
		gw.waitFor(t, 20*time.Second, "the plugin back under a new process", func() bool {
			now := childrenNamed(gw.cmd.Process.Pid, "signature-check")
			if len(now) != 1 {
				return false
			}
			for _, p := range now {
				for _, b := range before {
					if p == b {
						return false
					}
				}
			}
			return true
		})
		gw.waitFor(t, 20*time.Second, "signed requests verified again", func() bool {
			code, body, _ := get(t, http.DefaultClient, base+"/closed/b", "X-Signature", sign("s3cret", "GET", "/closed/b"))
			return code == 200 && body == "verified=true"
		})
		close(stop)
		wg.Wait()
		t.Logf("responses during the kill: %v", counts)
		if counts["closed error"]+counts["open error"] > 0 {
			t.Fatalf("connections failed: %v", counts)
		}
		for k := range counts {
			switch k {
			case "closed 200", "closed 503", "open 401", "open 200":
			default:
				t.Fatalf("unexpected responses %q: %v", k, counts)
			}
		}
		if gw.cmd.ProcessState != nil {
			t.Fatal("the gateway exited")
		}
	})
}
