package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/demo"
	"github.com/gatehouse/gatehouse/gateway/gossip"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// TestDevDomain runs the README's main command, `gatehouse dev --dir D`:
// a whole domain on one machine, serving the demo upstream through two
// gateways, usable by the CLI with D/dev.env, and gone on Ctrl-C. Every
// port is 0, so that the test runs whatever else uses the README's ports;
// dev's ready file says which it chose.
func TestDevDomain(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	nodeDir := filepath.Join(dir, "node")
	gw := &gatewayPids{pids: map[int]bool{}, nodeDir: nodeDir}
	t.Cleanup(gw.killAll)
	ready := filepath.Join(t.TempDir(), "ready.json")
	dev := start(t, "dev", "--dir", dir, "--admin-listen", "127.0.0.1:0", "--node-listen", "127.0.0.1:0",
		"--upstream-listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0,127.0.0.1:0",
		"--gateway-status-listen", "127.0.0.1:0,127.0.0.1:0", "--gateway-gossip-listen", "127.0.0.1:0,127.0.0.1:0",
		"--ready-file", ready)
	addrs := dev.waitReadyFile(t, ready)
	for _, key := range []string{"admin_listen", "node_listen", "upstream_listen", "demo-1_listen", "demo-1_status_listen",
		"demo-1_gossip_listen", "demo-2_listen", "demo-2_status_listen", "demo-2_gossip_listen"} {
		if a := addrs[key]; !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") {
			t.Fatalf("ready file: %s = %q, want a loopback address with its port; all: %v", key, a, addrs)
		}
	}
	if addrs["admin_url"] != "https://"+addrs["admin_listen"] {
		t.Errorf("ready file: admin_url = %q, want https://%s", addrs["admin_url"], addrs["admin_listen"])
	}
	out := dev.out.String()
	for _, want := range []string{"admin node     https://" + addrs["admin_listen"], "http://" + addrs["node_listen"] + "/v1/instances",
		"demo upstream  http://" + addrs["upstream_listen"], "curl http://" + addrs["demo-1_listen"] + "/orders/42",
		"(status http://" + addrs["demo-2_status_listen"] + "/status)", filepath.Join(dir, "dev.env"), "Ctrl-C stops everything"} {
		if !strings.Contains(out, want) {
			t.Errorf("gatehouse dev printed no %q:\n%s", want, out)
		}
	}

	// The README's curl, through both gateways.
	for _, addr := range []string{addrs["demo-1_listen"], addrs["demo-2_listen"]} {
		var echo demo.Echo
		until(t, "the demo upstream's echo through "+addr, func() (bool, string) {
			resp, err := noKeepAlive.Get("http://" + addr + "/orders/42")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false, resp.Status
			}
			echo = demo.Echo{}
			err = json.NewDecoder(resp.Body).Decode(&echo)
			return err == nil, "decode: " + errString(err)
		})
		if echo.Upstream != "orders" || echo.Method != "GET" || echo.Path != "/orders/42" {
			t.Errorf("GET /orders/42 via %s: %+v", addr, echo)
		}
	}

	// The two gateways gossip on the ports dev chose for them.
	for _, pair := range [][2]string{{"demo-1", "demo-2"}, {"demo-2", "demo-1"}} {
		status := addrs[pair[0]+"_status_listen"]
		until(t, pair[0]+" seeing "+pair[1]+" alive in its gossip", func() (bool, string) {
			peers, err := peersAt(status)
			if err != nil {
				return false, err.Error()
			}
			return peers[pair[1]].State == gossip.StateAlive, fmt.Sprintf("%+v", peers)
		})
	}

	// source dev.env; gatehouse group summary demo.
	env := devEnv(t, filepath.Join(dir, "dev.env"))
	var s apitypes.GroupSummary
	until(t, "group demo with 2 Healthy instances", func() (bool, string) {
		s = apitypes.GroupSummary{}
		data := devCLI(t, env, "group", "summary", "demo", "-o", "json")
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatalf("group summary demo -o json: %v\n%s", err, data)
		}
		return s.Instances == 2 && s.ByStatus["Healthy"] == 2 && s.Complete && s.CurrentDeployment == 1, string(data)
	})
	sourceDevEnvAndRun(t, dir)

	// The gateways' pids, to check they are gone after Ctrl-C.
	var pids []int
	until(t, "two gateways in the node manager's /v1/instances", func() (bool, string) {
		resp, err := http.Get("http://" + addrs["node_listen"] + localapi.PathInstances)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var list localapi.InstanceList
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			return false, err.Error()
		}
		pids = pids[:0]
		for _, in := range list.Instances {
			if in.PID != 0 && in.Process == localapi.ProcessRunning {
				pids = append(pids, in.PID)
				gw.add(in.PID)
			}
		}
		return len(pids) == 2, fmt.Sprintf("%+v", list.Instances)
	})

	// The admin node, node manager and upstream live in dev's process and
	// end with it; the gateways are its node manager's children, which it
	// must stop.
	dev.signal(syscall.SIGINT)
	if code := dev.exit(t, 30*time.Second); code != 0 {
		t.Errorf("gatehouse dev exited with %d after SIGINT, want 0\n%s", code, dev.out.String())
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("gateway %d still runs after gatehouse dev ended", pid)
		}
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// devEnv reads the GATEHOUSE_ variables of dev.env as a user's shell
// sets them: sourced in bash.
func devEnv(t *testing.T, path string) []string {
	t.Helper()
	if m := permOf(t, path); m != 0o600 {
		t.Errorf("dev.env: mode %v, want 0600 (it holds a token)", m)
	}
	cmd := exec.Command("bash", "-c", `source "$1" && env -0`, "bash", path)
	cmd.Env = withoutGatehouseEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("source %s: %v", path, err)
	}
	var env []string
	for _, kv := range strings.Split(string(out), "\x00") {
		if strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	if len(env) != 3 {
		t.Fatalf("source %s set %q, want GATEHOUSE_ADDR, GATEHOUSE_TOKEN and GATEHOUSE_CACERT", path, env)
	}
	return env
}

// devCLI runs the CLI with the environment of dev.env only (no saved
// login: HOME and GATEHOUSE_CONFIG point at nothing).
func devCLI(t *testing.T, devEnv []string, args ...string) []byte {
	t.Helper()
	home := t.TempDir()
	env := append(withoutGatehouseEnv(), "HOME="+home, "GATEHOUSE_CONFIG="+filepath.Join(home, "none.json"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(env, devEnv...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("gatehouse %s: %v\n%s%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.Bytes()
}
