package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/demo"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// devPorts are the fixed ports of `gatehouse dev` (README's quickstart).
var devPorts = []string{"8090", "8091", "9001", "8080", "8081", "8085", "8086"}

// TestDevDomain runs the README's main command, `gatehouse dev --dir D`:
// a whole domain on one machine, serving the demo upstream through two
// gateways, usable by the CLI with D/dev.env, and gone on Ctrl-C.
func TestDevDomain(t *testing.T) {
	began := time.Now()
	for _, port := range devPorts {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Skipf("gatehouse dev needs its fixed port %s, which is taken here: %v", port, err)
		}
		l.Close()
	}
	dir := t.TempDir()
	nodeDir := filepath.Join(dir, "node")
	gw := &gatewayPids{pids: map[int]bool{}, nodeDir: nodeDir}
	t.Cleanup(gw.killAll)
	dev := start(t, "dev", "--dir", dir)
	dev.waitFor(t, 30*time.Second, "the usage text", func() bool {
		return strings.Contains(dev.out.String(), "Ctrl-C stops everything")
	})
	out := dev.out.String()
	for _, want := range []string{"admin node     https://127.0.0.1:8090", "http://127.0.0.1:8091/v1/instances",
		"curl http://127.0.0.1:8080/orders/42", filepath.Join(dir, "dev.env")} {
		if !strings.Contains(out, want) {
			t.Errorf("gatehouse dev printed no %q:\n%s", want, out)
		}
	}

	// The README's curl, through both gateways.
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8081"} {
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
		resp, err := http.Get("http://127.0.0.1:8091" + localapi.PathInstances)
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
		return len(pids) == 2, ""
	})

	dev.signal(syscall.SIGINT)
	if code := dev.exit(t, 30*time.Second); code != 0 {
		t.Errorf("gatehouse dev exited with %d after SIGINT, want 0\n%s", code, dev.out.String())
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("gateway %d still runs after gatehouse dev ended", pid)
		}
	}
	for _, port := range devPorts {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
			c.Close()
			t.Errorf("port %s still answers after gatehouse dev ended", port)
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
