package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// refusedConfig routes to upstreamAddr through an external policy whose
// plugin no host has: the admin node accepts it (it checks the name's form
// only) and every gateway refuses it.
func refusedConfig(upstreamAddr string) string {
	return routeConfig(upstreamAddr) + `        policies:
          - name: external
            config:
              plugin: not-installed
`
}

// TestStatusShowsWhatNeedsAttention: on a domain where one instance is
// killed (with its host's node manager, so that it stays down) and one
// refuses its deployment, `gatehouse status` lists both in its attention
// list (the killed one lost and unreachable by its peers), the refusal
// with the gateway's own reason, and its host with the
// node manager's version; -o json and -o yaml carry the same answer.
func TestStatusShowsWhatNeedsAttention(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "u1", nil)
	d := threeOnTwoHosts(t, up, "--lost-after", "3s")
	h1, h2 := d.hosts["h1"], d.hosts["h2"]

	// gw-x, alone in group ext on h1, is given a deployment it refuses.
	// It is made through the API, which answers once the deployment is
	// stored, whatever the CLI's deploy waits for.
	d.cli.ok(t, "", "group", "create", "ext")
	d.member(t, "gw-x", "ext", h1)
	f := filepath.Join(d.work, "ext.yaml")
	writeFile(t, f, refusedConfig(up.addr))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", "ext")
	_, _, token, _ := d.cli.saved(t)
	api := newAdminAPI(t, d.url, d.caFile, token)
	if code, _, body := api.do(t, "POST", "/groups/ext/deployments", `{"message":"needs a plugin"}`); code != http.StatusCreated {
		t.Fatalf("deploy to ext: %d %s", code, body)
	}

	// gw-c, alone on h2, is killed with its node manager.
	victim := h2.views(t)["gw-c"]
	if victim.PID == 0 {
		t.Fatalf("h2 shows no pid for gw-c: %+v", victim)
	}
	h2.stop(t, syscall.SIGKILL)
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	var o apitypes.Overview
	find := func(kind, instance string) (apitypes.Attention, bool) {
		for _, a := range o.Attention {
			if a.Kind == kind && a.Instance == instance {
				return a, true
			}
		}
		return apitypes.Attention{}, false
	}
	until(t, "status showing gw-x refusing and gw-c lost and unreachable", func() (bool, string) {
		o = apitypes.Overview{}
		d.cli.json(t, &o, "status")
		refused, ok1 := find(apitypes.AttentionOnlyHeartbeat, "gw-x")
		_, ok2 := find(apitypes.AttentionLostConnection, "gw-c")
		// Its peers' gossip declares it dead within seconds, too.
		dead, ok3 := find(apitypes.AttentionUnreachable, "gw-c")
		return ok1 && strings.Contains(refused.Reason, "no file not-installed in the plugin directory") && ok2 &&
			ok3 && strings.Contains(dead.Reason, "gw-a, gw-b"), fmt.Sprintf("%+v", o.Attention)
	})
	refused, _ := find(apitypes.AttentionOnlyHeartbeat, "gw-x")
	if refused.Group != "ext" || refused.Host != "h1" {
		t.Errorf("refusal %+v", refused)
	}
	for _, a := range o.Attention {
		if a.Instance == "gw-a" || a.Instance == "gw-b" {
			t.Errorf("a healthy instance needs attention: %+v", a)
		}
	}
	groups := map[string]apitypes.OverviewGroup{}
	for _, g := range o.Groups {
		groups[g.Name] = g
	}
	if g := groups[nmGroup]; g.Instances != 3 || g.ByStatus["Healthy"] != 2 || g.ByStatus["Lost Connection"] != 1 || g.Rollout != "2/3" {
		t.Errorf("group %s %+v", nmGroup, g)
	}
	if g := groups["ext"]; g.Instances != 1 || g.ByStatus["Only Heartbeat"] != 1 || g.CurrentDeployment != 1 || g.Complete {
		t.Errorf("group ext %+v", g)
	}
	hosts := map[string]apitypes.OverviewHost{}
	for _, h := range o.Hosts {
		hosts[h.Name] = h
	}
	if h := hosts["h1"]; h.Instances != 3 || h.Version == "" || h.LastContact.IsZero() || h.CertNotAfter.IsZero() {
		t.Errorf("host h1 %+v", h)
	}
	if h := hosts["h2"]; h.Instances != 1 || !h.LastContact.Before(hosts["h1"].LastContact) {
		t.Errorf("host h2 %+v, h1 last contact %s", h, hosts["h1"].LastContact)
	}

	// The table names both, with the reason.
	out := d.cli.ok(t, "", "status")
	t.Logf("gatehouse status:\n%s", out)
	for _, want := range []string{"Domain e2e at ", "GROUP ", "HOST ", "Needs attention",
		"only_heartbeat ", "gw-x", "no file not-installed in the plugin directory", "lost_connection ", "gw-c"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table does not say %q:\n%s", want, out)
		}
	}

	// -o yaml is -o json in YAML: same field names, same values.
	var fromYAML any
	if err := yaml.Unmarshal([]byte(d.cli.ok(t, "", "status", "-o", "yaml")), &fromYAML); err != nil {
		t.Fatalf("status -o yaml does not parse: %v", err)
	}
	data, _ := json.Marshal(fromYAML)
	var y apitypes.Overview
	if err := json.Unmarshal(data, &y); err != nil {
		t.Fatal(err)
	}
	if y.Domain != "e2e" || len(y.Groups) != 2 || len(y.Hosts) != 2 || len(y.Attention) == 0 {
		t.Errorf("status -o yaml %+v", y)
	}
	yamlHas := false
	for _, a := range y.Attention {
		yamlHas = yamlHas || a.Kind == apitypes.AttentionOnlyHeartbeat && a.Instance == "gw-x" && strings.Contains(a.Reason, "no file not-installed in the plugin directory")
	}
	if !yamlHas {
		t.Errorf("status -o yaml lacks gw-x's refusal: %+v", y.Attention)
	}
}

// Shell completion, as docs/cli.md tells to install it: the bash script
// is valid bash, and completes commands and flags of the binary itself.
func TestShellCompletion(t *testing.T) {
	t.Parallel()
	cli := newAdminCLI(t, &transcript{})
	script := filepath.Join(t.TempDir(), "gatehouse.bash")
	writeFile(t, script, cli.ok(t, "", "completion", "bash"))
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n on the completion script: %v\n%s", err, out)
	}
	// What the script runs to complete "gatehouse sta<TAB>".
	cases := map[string][]string{
		"status\t":     {"__complete", "sta"},
		"--env\t":      {"__complete", "group", "update", "web", "--en"},
		"completion\t": {"__complete", "compl"},
		"--addr\t":     {"__complete", "node", "join", "--ad"},
	}
	for want, args := range cases {
		if out := cli.ok(t, "", args...); !strings.Contains(out, want) {
			t.Errorf("gatehouse %s: %q lacks %q", strings.Join(args, " "), out, want)
		}
	}
	for _, shell := range []string{"zsh", "fish"} {
		if out := cli.ok(t, "", "completion", shell); !strings.Contains(out, "gatehouse") {
			t.Errorf("completion %s: %q", shell, out)
		}
	}
}
