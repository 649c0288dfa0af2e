package external

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// pid is the plugin process's id, 0 when none runs.
func pid(p policy.Policy) int {
	in := p.(*external).proc.cur.Load()
	if in == nil {
		return 0
	}
	<-in.ready
	if in.err != nil || in.client.Exited() {
		return 0
	}
	return in.client.ReattachConfig().Pid
}

// alive reports whether the process runs; a zombie, dead but not yet
// reaped by whoever adopted it, does not.
func alive(pid int) bool {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		i := bytes.LastIndexByte(b, ')')
		return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
	}
	return syscall.Kill(pid, 0) == nil
}

// TestKilledMidTraffic kills the example plugin with SIGKILL while
// requests go through it: the requests in flight fail as failure_mode
// says, and the plugin is back for the requests after. The plugin is
// stopped (SIGSTOP) before it is killed, so that every looping client has
// a call in flight when it dies.
func TestKilledMidTraffic(t *testing.T) {
	const clients = 4
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			env, _, met := gatewayEnv(t)
			p := policytest.Build(t, Kind, `{"plugin": "signature", "config": {"secret": "s3cret"}, "timeout": "5s", "failure_mode": "`+mode+`"}`, env)
			req := policytest.Get("/orders/7", "X-Signature", signature("s3cret", "GET", "/orders/7"))
			first := pid(p)
			if first == 0 {
				t.Fatal("the plugin did not start with the deployment")
			}

			var passed, failed, other, inFlight atomic.Int64
			var afterKill atomic.Bool
			var recovered atomic.Int64 // passes with a verdict after the kill
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						inFlight.Add(1)
						c, ok := policytest.Run(p, req)
						inFlight.Add(-1)
						a, answered := c.Answer()
						switch v := verdict(c); {
						case ok && v == "modify":
							passed.Add(1)
							if afterKill.Load() {
								recovered.Add(1)
							}
						case v == "failed" && (mode == "open" && ok || mode == "closed" && !ok && answered && a.Status == 503):
							failed.Add(1)
						default:
							other.Add(1)
						}
					}
				}()
			}
			waitfor.True(t, 10*time.Second, "traffic flows", func() bool { return passed.Load() > 100 })
			if err := syscall.Kill(first, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			waitfor.True(t, 10*time.Second, "every client waits on the plugin", func() bool {
				// Long enough for a call that entered Run to reach the
				// plugin, with the race detector too.
				time.Sleep(100 * time.Millisecond)
				return inFlight.Load() == clients
			})
			afterKill.Store(true)
			if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitfor.True(t, 10*time.Second, "the plugin is back", func() bool { return recovered.Load() > 100 })
			close(stop)
			wg.Wait()

			if failed.Load() < clients || other.Load() != 0 {
				t.Errorf("passed %d, failed per failure_mode %d, other outcomes %d", passed.Load(), failed.Load(), other.Load())
			}
			if met.count("signature/crash") < clients {
				t.Errorf("failures counted %v, want %d crashes at least", met.failed, clients)
			}
			if now := pid(p); now == 0 || now == first {
				t.Errorf("plugin pid %d after the kill, was %d", now, first)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	env, _, met := gatewayEnv(t)
	closed := policytest.Build(t, Kind, `{"plugin": "testplugin", "timeout": "50ms"}`, env)
	open := policytest.Build(t, Kind, `{"plugin": "testplugin", "timeout": "50ms", "failure_mode": "open"}`, env)
	slow := policytest.Get("/", "X-Test-Delay", "2s")

	start := time.Now()
	c, ok := policytest.Run(closed, slow)
	if took := time.Since(start); took > time.Second {
		t.Errorf("a timed-out call took %s", took)
	}
	if a := answer(t, c); ok || a.Status != 503 || a.Code != "policy_unavailable" {
		t.Errorf("ok %v, answer %+v", ok, a)
	}
	if c, ok = policytest.Run(open, slow); !ok || verdict(c) != "failed" {
		t.Errorf("failing open: ok %v, verdict %q", ok, verdict(c))
	}
	if n := met.count("testplugin/timeout"); n != 2 {
		t.Errorf("%d timeouts counted, want 2", n)
	}
}

// TestStuckPluginRestarted: a plugin that stops answering is restarted.
func TestStuckPluginRestarted(t *testing.T) {
	env, _, _ := gatewayEnv(t)
	p := policytest.Build(t, Kind, `{"plugin": "testplugin", "timeout": "20ms"}`, env)
	p.(*external).proc.stuckAfter = 500 * time.Millisecond
	if _, ok := policytest.Run(p, policytest.Get("/")); !ok {
		t.Fatal("the plugin does not answer")
	}
	first := pid(p)
	// Timeouts within stuckAfter of the last answer leave it be.
	for range 3 {
		policytest.Run(p, policytest.Get("/", "X-Test-Delay", "10s"))
	}
	if pid(p) != first {
		t.Fatal("restarted on the first timeouts")
	}
	time.Sleep(500 * time.Millisecond)
	policytest.Run(p, policytest.Get("/", "X-Test-Delay", "10s"))
	waitfor.True(t, 10*time.Second, "a new plugin answers", func() bool {
		_, ok := policytest.Run(p, policytest.Get("/"))
		return ok
	})
	if now := pid(p); now == first {
		t.Errorf("still the stuck process %d", now)
	}
	waitfor.True(t, 10*time.Second, "the stuck process ends", func() bool { return !alive(first) })
}

// TestPluginExitsOnItsOwn: a plugin whose process ends is started again
// on the next call.
func TestPluginExitsOnItsOwn(t *testing.T) {
	env, _, met := gatewayEnv(t)
	p := policytest.Build(t, Kind, `{"plugin": "testplugin"}`, env)
	first := pid(p)
	if _, ok := policytest.Run(p, policytest.Get("/", "X-Test-Action", "exit")); ok {
		t.Fatal("allowed, failing closed")
	}
	if met.count("testplugin/crash") != 1 {
		t.Errorf("failures %v, want one crash", met.failed)
	}
	waitfor.True(t, 10*time.Second, "a new plugin answers", func() bool {
		_, ok := policytest.Run(p, policytest.Get("/"))
		return ok
	})
	if now := pid(p); now == first || alive(first) {
		t.Errorf("pid %d, was %d (alive %v)", now, first, alive(first))
	}
}

// TestCrashLoopBackoff: a plugin that never starts is not started in a
// tight loop.
func TestCrashLoopBackoff(t *testing.T) {
	dir := t.TempDir()
	starts := filepath.Join(dir, "starts")
	script := "#!/bin/sh\necho start >> " + starts + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "broken"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env, _, met := gatewayEnv(t)
	env.PluginDir = dir
	p := policytest.Build(t, Kind, `{"plugin": "broken", "timeout": "10ms"}`, env)
	begin := time.Now()
	for time.Since(begin) < 1500*time.Millisecond {
		if c, ok := policytest.Run(p, policytest.Get("/")); ok || answer(t, c).Status != 503 {
			t.Fatal("a broken plugin let a request through, failing closed")
		}
		time.Sleep(time.Millisecond)
	}
	b, _ := os.ReadFile(starts)
	// The deployment's start and one a second later; the next is due two
	// seconds after that.
	if n := len(b) / len("start\n"); n != 2 {
		t.Errorf("%d starts in 1.5s, want 2", n)
	}
	if met.count("broken/crash") == 0 {
		t.Errorf("failures %v", met.failed)
	}
}

// TestPluginExitsWithGateway: a gateway that dies without stopping its
// plugins (SIGKILL) leaves no plugin running.
func TestPluginExitsWithGateway(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), gatewayHelperEnv+"="+pluginDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var plugin int
	if _, err := fmt.Fscan(out, &plugin); err != nil || plugin == 0 {
		cmd.Process.Kill()
		t.Fatalf("the stand-in gateway started no plugin: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitfor.True(t, 10*time.Second, "the orphaned plugin exits", func() bool { return !alive(plugin) })
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPluginOutputLogged: what a plugin logs or prints reaches the
// gateway's log.
func TestPluginOutputLogged(t *testing.T) {
	env, _, _ := gatewayEnv(t)
	var buf lockedBuffer
	env.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &buf})
	p := policytest.Build(t, Kind, `{"plugin": "testplugin"}`, env)
	if _, ok := policytest.Run(p, policytest.Get("/", "X-Test-Action", "log")); !ok {
		t.Fatal("refused")
	}
	waitfor.True(t, 10*time.Second, "the plugin's lines are logged", func() bool {
		log := buf.String()
		return strings.Contains(log, "[WARN]  external.testplugin: logged with the sdk: plugin=testplugin n=7") &&
			strings.Contains(log, "printed on stderr")
	})
}

// TestSharedAcrossDeployments: a deployment with the same plugin and
// configuration keeps the process; another configuration gets its own;
// closing the resource ends it.
func TestSharedAcrossDeployments(t *testing.T) {
	env, res, _ := gatewayEnv(t)
	a := policytest.Build(t, Kind, `{"plugin": "testplugin", "config": {"x": 1}, "timeout": "1s"}`, env)
	b := policytest.Build(t, Kind, `{"plugin": "testplugin", "config": {"x": 1}, "failure_mode": "open"}`, env)
	c := policytest.Build(t, Kind, `{"plugin": "testplugin", "config": {"x": 2}}`, env)
	if res.Made() != 2 || pid(a) != pid(b) || pid(a) == pid(c) {
		t.Errorf("%d processes made; pids %d %d %d", res.Made(), pid(a), pid(b), pid(c))
	}
	first := pid(a)
	res.Close()
	if alive(first) {
		t.Errorf("process %d still runs after Close", first)
	}
	ctx, ok := policytest.Run(a, policytest.Get("/"))
	if ok || answer(t, ctx).Status != 503 {
		t.Errorf("a closed plugin's policy answered ok %v", ok)
	}
}
