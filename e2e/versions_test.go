package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// oldVersion is the version of the older build of the mixed-fleet test.
const oldVersion = "0.9.0-level1"

// buildOldGateway builds the gatehouse binary as a release of feature
// level 1 would be: -ldflags -X main.featureLevel=1 makes the real binary
// say level 1 in --version (which node managers read) and in its reports,
// and refuse, as a level-1 gateway would, every configuration that needs
// level 2 (docs/gateway.md#feature-levels).
func buildOldGateway(t *testing.T, path string) {
	t.Helper()
	build := exec.Command("go", "build", "-o", path,
		"-ldflags", "-X main.version="+oldVersion+" -X main.featureLevel=1", "github.com/gatehouse/gatehouse/cmd/gatehouse")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the level-1 gatehouse: %v\n%s", err, out)
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil || !strings.Contains(string(out), "gatehouse version "+oldVersion+" (configuration feature level 1)") {
		t.Fatalf("the level-1 build says %q (%v)", out, err)
	}
}

// copyBinary replaces dst with src by a rename, as a package upgrade does:
// the running gateways keep the file they started from.
func copyBinary(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// versionsOf turns a version mix into "instance → version/level".
func versionsOf(vs []apitypes.VersionCount) map[string]string {
	out := map[string]string{}
	for _, v := range vs {
		for _, in := range v.Instances {
			out[in] = fmt.Sprintf("%s/%d", v.Version, v.FeatureLevel)
		}
	}
	return out
}

// TestMixedFeatureLevels: a host's gateway binary is upgraded in place and
// only web-1 restarted onto it, so that web-2 still runs the level-1
// build. The admin node shows the versions each instance actually runs
// (not the host binary's alone); a configuration that needs level 2 is
// refused before signing, naming web-2 and the field; with
// --allow-partial it is deployed, web-1 applies it, web-2 keeps serving
// deployment #1 (its gateway refuses #2 itself), and the deploy result,
// the roll-out and `gatehouse status` report web-2 skipped.
func TestMixedFeatureLevels(t *testing.T) {
	up := startUpstream(t, "one", nil)
	d := newNMDomain(t)
	gw := filepath.Join(d.work, "gateway-bin")
	buildOldGateway(t, gw)
	d.joinNode(t)
	d.createInstance(t, "web-1")
	d.createInstance(t, "web-2")
	if n := d.deployTo(t, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	d.startNode(t, "--gateway-binary", gw)
	d.waitLocal(t, "every instance running deployment #1", d.appliedEverywhere(1))
	d.waitRolledOut(t, 1)
	old := fmt.Sprintf("%s/1", oldVersion)
	until(t, "both instances reported on the level-1 build", func() (bool, string) {
		s := d.summary(t)
		v := versionsOf(s.Versions)
		return v["web-1"] == old && v["web-2"] == old, fmt.Sprintf("%+v", s.Versions)
	})

	// The upgrade in place, then a restart of web-1 only.
	copyBinary(t, binary, gw)
	d.hostCapabilities(t, "h1 reporting the upgraded binary", func(c *apitypes.HostCapabilities) bool {
		return c.FeatureLevel == deploy.FeatureLevel && c.GatewayVersion == "dev"
	})
	d.cli.ok(t, "", "instance", "restart", "web-1")
	current := fmt.Sprintf("dev/%d", deploy.FeatureLevel)
	until(t, "web-1 on the new build, web-2 still on the old", func() (bool, string) {
		s := d.summary(t)
		v := versionsOf(s.Versions)
		return v["web-1"] == current && v["web-2"] == old, fmt.Sprintf("%+v", s.Versions)
	})
	var o apitypes.Overview
	d.cli.json(t, &o, "status")
	if len(o.Hosts) != 1 || o.Hosts[0].GatewayBinary != "dev" || versionsOf(o.Hosts[0].Gateways)["web-2"] != old {
		t.Errorf("status: hosts %+v, want h1 with binary dev and web-2 running %s", o.Hosts, old)
	}

	// A configuration that needs level 2: http-log's sample_percent.
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(collector.Close)
	f := filepath.Join(d.work, "sampled.yaml")
	writeFile(t, f, routeConfig(up.addr)+fmt.Sprintf(`        policies:
          - name: http-log
            config:
              endpoint: %s
              sample_percent: 10
`, collector.URL))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", nmGroup)
	const field = "services[0].routes[0].policies[0].config.sample_percent"
	_, errOut := d.cli.fail(t, "", "deploy", "--group", nmGroup, "-m", "sampled access log")
	if !strings.Contains(errOut, "unrunnable_config") || !strings.Contains(errOut, "web-2 (host h1, level 1)") ||
		strings.Contains(errOut, "web-1") || !strings.Contains(errOut, field) || !strings.Contains(errOut, "feature level 2") ||
		!strings.Contains(errOut, "nothing deployed") || !strings.Contains(errOut, "--allow-partial") {
		t.Errorf("deploy of a level-2 configuration said %q, want a refusal naming web-2 and %s", errOut, field)
	}
	var ds []apitypes.Deployment
	d.cli.json(t, &ds, "deployments", "--group", nmGroup)
	if len(ds) != 1 {
		t.Fatalf("after the refused deploy, %d deployments, want 1", len(ds))
	}

	out, errOut, code := d.cli.run(t, "", "deploy", "--group", nmGroup, "-m", "sampled access log where it runs", "--allow-partial", "-o", "json")
	if code != 0 || !strings.Contains(errOut, "rolled out #2: 1/2 instances applied it, 1 skipped (partial deployment)") ||
		!strings.Contains(errOut, "partial deployment: 1 instance(s) skipped") || !strings.Contains(errOut, "web-2 (host h1): "+field) {
		t.Fatalf("deploy --allow-partial exited %d:\n%s\n%s", code, out, errOut)
	}
	var res struct {
		Deployed bool                       `json:"deployed"`
		Number   uint64                     `json:"number"`
		Skipped  []apitypes.SkippedInstance `json:"skipped"`
		Rollout  *apitypes.Rollout          `json:"rollout"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("deploy -o json: %v\n%s", err, out)
	}
	if !res.Deployed || res.Number != 2 || len(res.Skipped) != 1 || res.Skipped[0].Instance != "web-2" || res.Rollout == nil {
		t.Fatalf("deploy --allow-partial answered %+v", res)
	}
	r := *res.Rollout
	states := map[string]string{}
	for _, in := range r.Instances {
		states[in.Name] = in.State
	}
	if r.State != apitypes.RolloutComplete || r.Skipped != 1 || states["web-1"] != apitypes.InstanceApplied || states["web-2"] != apitypes.InstanceSkipped {
		t.Errorf("roll-out of #2: %+v", r)
	}
	// web-2's own gateway refuses #2 and goes on serving #1.
	views := d.waitLocal(t, "web-2 refusing #2", func(v map[string]localapi.InstanceView) bool {
		return strings.Contains(v["web-2"].LastError, "deployment 2 refused")
	})
	if views["web-1"].AppliedDeployment != 2 || views["web-2"].AppliedDeployment != 1 ||
		!strings.Contains(views["web-2"].LastError, "has feature level 1") {
		t.Errorf("local views: web-1 %+v, web-2 %+v", views["web-1"], views["web-2"])
	}
	d.mustRouteTo(t, "one", "web-1", "web-2")

	s := d.summary(t)
	if len(s.Skipped) != 1 || s.Skipped[0].Instance != "web-2" || !strings.Contains(s.Skipped[0].Reason, field) {
		t.Errorf("summary: skipped %+v", s.Skipped)
	}
	status := d.cli.ok(t, "", "status")
	for _, want := range []string{"Group g1: deployment #2 is partial, 1 instance(s) skipped:", "web-2 (host h1): " + field,
		oldVersion, "Gateway versions:"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	if !slices.ContainsFunc(s.Versions, func(v apitypes.VersionCount) bool { return v.Version == oldVersion }) {
		t.Errorf("summary versions %+v lack %s", s.Versions, oldVersion)
	}
}
