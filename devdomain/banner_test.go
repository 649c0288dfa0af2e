package devdomain

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/nodemanager/supervisor"
)

// The banner says where each gateway's log is: the file the node
// manager's exec driver writes its output to.
func TestBannerNamesGatewayLogs(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	opts := Options{Dir: dir, Out: &out, NodeAddr: "127.0.0.1:8091", Upstream: "127.0.0.1:9001", Gateways: []Gateway{
		{Name: "demo-1", Listen: "127.0.0.1:8080", StatusListen: "127.0.0.1:8085"},
		{Name: "demo-2", Listen: "127.0.0.1:8081", StatusListen: "127.0.0.1:8086"},
	}}
	printUsage(opts, "pw", filepath.Join(dir, "dev.env"), "https://127.0.0.1:8090")
	exec, err := supervisor.NewExec(supervisor.ExecOptions{DataDir: filepath.Join(dir, "node")})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range opts.Gateways {
		want := "log " + filepath.Join(exec.InstanceDir(g.Name), supervisor.LogFileName) + "\n"
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner does not say %q:\n%s", want, out.String())
		}
	}
}
