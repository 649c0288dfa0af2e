package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withoutGatehouseEnv is this process's environment without what would
// point the CLI at a domain or a saved login: GATEHOUSE_*, HOME and
// XDG_CONFIG_HOME.
func withoutGatehouseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GATEHOUSE_") || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// sourceDevEnvAndRun does what the README's quickstart says, in a fresh
// bash whose PATH has no gatehouse and whose HOME has no saved login:
// `source DIR/dev.env && gatehouse group summary demo`. dev.env alone must
// put the CLI on PATH and point it at the domain.
func sourceDevEnvAndRun(t *testing.T, dir string) {
	t.Helper()
	home := t.TempDir()
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home}
	if lp, err := exec.LookPath("gatehouse"); err == nil {
		t.Logf("a gatehouse on this machine's PATH (%s) is left out of the shell's PATH", lp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script := "source " + filepath.Join(dir, "dev.env") + " && command -v gatehouse && gatehouse group summary demo"
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash -c %q: %v\n%s", script, err, out)
	}
	lines := strings.SplitN(string(out), "\n", 2)
	if lines[0] != binary {
		t.Errorf("after source dev.env, gatehouse is %q, want the binary that runs the domain, %s", lines[0], binary)
	}
	if !strings.Contains(string(out), "demo") || !strings.Contains(string(out), "Healthy") {
		t.Errorf("gatehouse group summary demo after source dev.env:\n%s", out)
	}
}
