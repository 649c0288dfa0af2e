package external

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// pluginDir holds the plugins the tests run, built once by TestMain:
// "signature" (examples/policy-plugin) and "testplugin"
// (testdata/testplugin).
var pluginDir string

func TestMain(m *testing.M) {
	if dir := os.Getenv(gatewayHelperEnv); dir != "" {
		os.Exit(gatewayHelper(dir))
	}
	dir, err := os.MkdirTemp("", "external-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginDir = dir
	code := build(dir)
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// gatewayHelperEnv makes the test binary a stand-in gateway: it starts
// the signature plugin from the directory the variable names, prints the
// plugin's pid and waits to be killed.
const gatewayHelperEnv = "EXTERNAL_TEST_GATEWAY"

func gatewayHelper(dir string) int {
	env := &policy.Env{Logger: hclog.NewNullLogger(), Resources: &policytest.Resources{}, PluginDir: dir}
	p, err := New(map[string]any{"plugin": "signature", "config": map[string]any{"secret": "x"}}, env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(pid(p))
	select {}
}

func build(dir string) int {
	for name, pkg := range map[string]string{
		"signature":  "github.com/gatehouse/gatehouse/examples/policy-plugin",
		"testplugin": "github.com/gatehouse/gatehouse/policy/external/testdata/testplugin",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
			return 1
		}
	}
	return 0
}

// metrics counts failures by plugin and reason.
type metrics struct {
	mu     sync.Mutex
	failed map[string]int
}

func (m *metrics) LogDropped(string, int) {}

func (m *metrics) ExternalFailed(plugin, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed == nil {
		m.failed = map[string]int{}
	}
	m.failed[plugin+"/"+reason]++
}

func (m *metrics) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed[key]
}

// gatewayEnv is an Env as a gateway gives it, with the test plugins; its
// resources are closed when the test ends.
func gatewayEnv(t testing.TB) (*policy.Env, *policytest.Resources, *metrics) {
	res, met := policytest.NewResources(t), &metrics{}
	level := hclog.Off
	if testing.Verbose() && os.Getenv("EXTERNAL_LOG") != "" {
		level = hclog.Debug
	}
	env := &policy.Env{
		Logger:    hclog.New(&hclog.LoggerOptions{Level: level, Output: os.Stderr}),
		Consumers: policy.NewConsumers(),
		Resources: res,
		PluginDir: pluginDir,
		Metrics:   met,
	}
	return env, res, met
}
