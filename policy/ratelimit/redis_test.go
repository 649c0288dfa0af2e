package ratelimit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/internal/testaddr"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// freePort returns a port of 127.0.0.1 kept for the test's redis-server,
// which binds it with SO_REUSEADDR.
func freePort(t *testing.T) int {
	t.Helper()
	return testaddr.ReservedPort(t)
}

// startRedis runs a redis-server of its own on port until the test ends;
// the test is skipped where there is none.
func startRedis(t *testing.T, port int, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, args...)
	cmd := exec.Command(bin, args...)
	// A file, not a buffer: the server writes it directly, while the wait
	// below reads it.
	logPath := filepath.Join(t.TempDir(), "redis.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitfor.Cond(t, 10*time.Second, "redis-server to listen", func() (bool, string) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return true, ""
		}
		out, _ := os.ReadFile(logPath)
		return false, fmt.Sprintf("%v\n%s", err, out)
	})
}

func redisConfigJSON(port int, extra string) string {
	return fmt.Sprintf(`{"limits": [{"requests": 100, "window": "minute"}], "key": "ip", "mode": "redis", "sync_interval": "10s", "redis": {"address": "127.0.0.1:%d"%s}}`, port, extra)
}

// clock is a settable clock for stores' syncing.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) get() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// redisInstances builds the policy on n instances sharing through Redis,
// their syncing on clk.
func redisInstances(t *testing.T, config string, n int, clk *clock, log hclog.Logger) []policy.Policy {
	var ps []policy.Policy
	for range n {
		e := env(t, nil)
		if log != nil {
			e.Logger = log
		}
		p := policytest.Build(t, kind, config, e)
		storeOf(p).now = clk.get
		ps = append(ps, p)
	}
	return ps
}

func TestRedisBurst(t *testing.T) {
	port := freePort(t)
	startRedis(t, port)
	for _, tt := range []struct {
		name, extra string
		n           int
	}{
		{"2 instances", "", 2},
		{"3 instances, database 3", `, "db": 3`, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0}
			ps := redisInstances(t, redisConfigJSON(port, tt.extra), tt.n, clk, nil)
			const perSync = 10
			req := from("192.0.2." + strconv.Itoa(tt.n))
			allowed := 0
			for round := range 50 {
				now := t0.Add(time.Duration(round) * 100 * time.Millisecond)
				clk.set(now)
				for _, p := range ps {
					allowed += allowedOf(p, req, now, perSync)
				}
				for _, p := range ps {
					storeOf(p).sync.flush()
				}
			}
			t.Logf("%d instances, %d requests each per sync: %d allowed of a limit of 100", tt.n, perSync, allowed)
			if limit, slack := 100, perSync*(tt.n-1); allowed < limit || allowed > limit+slack {
				t.Errorf("%d allowed of a limit of 100, want 100 to %d", allowed, limit+slack)
			}
			// A new instance learns the total at its first sync.
			late := redisInstances(t, redisConfigJSON(port, tt.extra), 1, clk, nil)[0]
			at(late, req, clk.get())
			storeOf(late).sync.flush()
			if _, ok := at(late, req, clk.get()); ok {
				t.Error("new instance allowed a request past the group's total")
			}
		})
	}
}

func TestRedisPassword(t *testing.T) {
	port := freePort(t)
	startRedis(t, port, "--requirepass", "s3cret")
	clk := &clock{now: t0}
	var logs bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs})
	good := redisInstances(t, redisConfigJSON(port, `, "password": "s3cret"`), 2, clk, log)
	allowedOf(good[0], from("192.0.2.1"), t0, 100)
	storeOf(good[0]).sync.flush()
	storeOf(good[1]).sync.flush()
	at(good[1], from("192.0.2.1"), t0)
	storeOf(good[1]).sync.flush()
	if _, ok := at(good[1], from("192.0.2.1"), t0); ok {
		t.Error("authenticated instances do not share their counts")
	}
	if logs.Len() > 0 {
		t.Errorf("logged:\n%s", logs.String())
	}
	bad := redisInstances(t, redisConfigJSON(port, `, "password": "wrong"`), 1, clk, log)[0]
	at(bad, from("192.0.2.1"), t0)
	storeOf(bad).sync.flush()
	if !bytes.Contains(logs.Bytes(), []byte("Redis unavailable")) {
		t.Errorf("wrong password not logged:\n%s", logs.String())
	}
}

// Without Redis, counting goes on locally, the failure is logged once per
// period, and the counts are added once Redis is back.
func TestRedisDown(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	port := freePort(t)
	clk := &clock{now: t0}
	var logs bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs})
	ps := redisInstances(t, redisConfigJSON(port, `, "timeout": "50ms"`), 2, clk, log)
	req := from("192.0.2.1")
	if n := allowedOf(ps[0], req, t0, 150); n != 100 {
		t.Errorf("Redis down: %d allowed, want the local 100", n)
	}
	for i := range 20 {
		clk.set(t0.Add(time.Duration(i) * time.Second))
		storeOf(ps[0]).sync.flush()
	}
	if n := bytes.Count(logs.Bytes(), []byte("Redis unavailable")); n != 1 {
		t.Errorf("logged %d times in 20 s, want once:\n%s", n, logs.String())
	}

	startRedis(t, port)
	clk.set(t0.Add(30 * time.Second))
	storeOf(ps[0]).sync.flush()
	if !bytes.Contains(logs.Bytes(), []byte("Redis available again")) {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	// The other instance learns the 100 counted while Redis was down.
	at(ps[1], req, t0.Add(30*time.Second))
	storeOf(ps[1]).sync.flush()
	if _, ok := at(ps[1], req, t0.Add(30*time.Second)); ok {
		t.Error("counts made while Redis was down were not added")
	}
}
