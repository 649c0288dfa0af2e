package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
)

// pluginConfig routes every path to upstreamAddr through an external
// policy running plugin.
func pluginConfig(upstreamAddr, plugin string) string {
	return routeConfig(upstreamAddr) + fmt.Sprintf(`        policies:
          - name: external
            config:
              plugin: %s
`, plugin)
}

// hostCapabilities waits until host h1 reports capabilities that satisfy
// ok, and returns them.
func (d *nmDomain) hostCapabilities(t *testing.T, what string, ok func(c *apitypes.HostCapabilities) bool) *apitypes.HostCapabilities {
	t.Helper()
	var h apitypes.Host
	until(t, what, func() (bool, string) {
		h = apitypes.Host{}
		d.cli.json(t, &h, "host", "get", "h1")
		return h.Capabilities != nil && ok(h.Capabilities), fmt.Sprintf("%+v", h.Capabilities)
	})
	return h.Capabilities
}

// TestDeployWarnsOfMissingPlugin: the node manager reports what its host
// can run; a draft with an external policy whose plugin is not on the
// host validates with a warning naming the instances, `deploy --strict`
// refuses it and deploys nothing, a plain deploy warns; once the plugin
// is installed, the warning is gone.
func TestDeployWarnsOfMissingPlugin(t *testing.T) {
	up := startUpstream(t, "one", nil)
	d := setUpNode(t, up, "web-1", "web-2")
	pluginDir := filepath.Join(d.nodeDir, "plugins")
	c := d.hostCapabilities(t, "h1 reporting its capabilities", func(c *apitypes.HostCapabilities) bool { return true })
	if c.FeatureLevel != deploy.FeatureLevel || c.GatewayVersion == "" || c.PluginDir != pluginDir || len(c.Plugins) != 0 {
		t.Errorf("capabilities of h1: %+v, want level %d, a version, plugin dir %s and no plugin", c, deploy.FeatureLevel, pluginDir)
	}

	f := filepath.Join(d.work, "plugin.yaml")
	writeFile(t, f, pluginConfig(up.addr, "signature-check"))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", nmGroup)
	const warning = `warning: services[0].routes[0].policies[0].config.plugin: external policy plugin "signature-check" is not in the plugin directory of host h1: web-1, web-2 would refuse this configuration`
	out := d.cli.ok(t, "", "config", "validate", "--group", nmGroup)
	if !strings.Contains(out, "is valid") || !strings.Contains(out, warning) {
		t.Errorf("config validate said:\n%s\nwant the warning:\n%s", out, warning)
	}
	var v apitypes.Validation
	d.cli.json(t, &v, "config", "validate", "--group", nmGroup)
	if len(v.Warnings) != 1 || !slices.Equal(v.Warnings[0].Instances, []string{"web-1", "web-2"}) {
		t.Errorf("config validate -o json: warnings %+v, want one naming web-1 and web-2", v.Warnings)
	}

	_, errOut := d.cli.fail(t, "", "deploy", "--group", nmGroup, "-m", "with a plugin", "--strict")
	if !strings.Contains(errOut, "unrunnable_config") || !strings.Contains(errOut, "nothing deployed") ||
		!strings.Contains(errOut, "web-1, web-2 would refuse") {
		t.Errorf("deploy --strict said %q, want a refusal naming web-1 and web-2", errOut)
	}
	var ds []apitypes.Deployment
	d.cli.json(t, &ds, "deployments", "--group", nmGroup)
	if len(ds) != 1 {
		t.Fatalf("after a refused strict deploy, %d deployments, want 1", len(ds))
	}

	// Without --strict the deployment is made, with the warning. Whether
	// the command then waits for the roll-out (which these gateways
	// refuse) is not this test's matter: only the warning and the
	// deployment are checked.
	_, errOut, _ = d.cli.run(t, "", "deploy", "--group", nmGroup, "-m", "with a plugin anyway")
	if !strings.Contains(errOut, warning) {
		t.Errorf("deploy said on stderr %q, want the warning %q", errOut, warning)
	}
	ds = nil
	d.cli.json(t, &ds, "deployments", "--group", nmGroup)
	if len(ds) != 2 {
		t.Errorf("after a deploy with warnings, %d deployments, want 2", len(ds))
	}

	// The plugin installed on the host: its next heartbeat says so and the
	// warning is gone.
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(pluginDir, "signature-check"), "#!/bin/sh\nexit 1\n")
	if err := os.Chmod(filepath.Join(pluginDir, "signature-check"), 0o755); err != nil {
		t.Fatal(err)
	}
	d.hostCapabilities(t, "h1 reporting the plugin", func(c *apitypes.HostCapabilities) bool {
		return slices.Equal(c.Plugins, []string{"signature-check"})
	})
	out = d.cli.ok(t, "", "config", "validate", "--group", nmGroup)
	if strings.Contains(out, "warning") {
		t.Errorf("config validate with the plugin installed said:\n%s", out)
	}
}
