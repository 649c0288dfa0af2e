package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/metrics"
)

// twoRouteConfig sends /ok/* and /fail/* to one upstream, as two routes.
func twoRouteConfig(upstreamAddr string) string {
	return fmt.Sprintf(`upstreams:
  - name: api
    targets:
      - address: %s
services:
  - name: api
    upstream: api
    routes:
      - name: ok
        paths: ["/ok/*"]
      - name: fail
        paths: ["/fail/*"]
`, upstreamAddr)
}

// startOkFailUpstream answers /fail/* with 500 and the rest with 200.
func startOkFailUpstream(t *testing.T) *upstream {
	t.Helper()
	return startUpstream(t, "api", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fail/") {
			http.Error(w, "broken", 500)
			return
		}
		w.Write([]byte("ok"))
	})
}

// metricsTotals asks the admin node the CLI is logged in to for the
// group's totals over the last hour, optionally for one route and one
// instance.
func metricsTotals(t *testing.T, cli *adminCLI, route, instance string) (apitypes.MetricsValues, error) {
	args := []string{"metrics", "--group", nmGroup, "--since", "1h", "-o", "json"}
	if route != "" {
		args = append(args, "--route", route)
	}
	if instance != "" {
		args = append(args, "--instance", instance)
	}
	out, errOut, code := cli.run(t, "", args...)
	if code != 0 {
		return apitypes.MetricsValues{}, fmt.Errorf("metrics exited %d: %s", code, errOut)
	}
	var ans apitypes.MetricsAnswer
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		return apitypes.MetricsValues{}, fmt.Errorf("metrics -o json printed %q: %v", out, err)
	}
	return ans.Totals, nil
}

// gaugeAt reads one unlabelled metric of a Prometheus text page.
func gaugeAt(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", url, name)
}

// answered counts the answers a client got from one gateway: 200 from
// route ok, 500 from route fail.
type answered struct{ ok, fail int }

// sent is what the test got answers for, by instance: what it expects
// the domain to have counted.
type sent map[string]answered

func (s sent) add(instance, route string, n int) {
	a := s[instance]
	if route == "ok" {
		a.ok += n
	} else {
		a.fail += n
	}
	s[instance] = a
}

func (s sent) total() answered {
	var all answered
	for _, a := range s {
		all.ok += a.ok
		all.fail += a.fail
	}
	return all
}

// routeStatus is the status each route of twoRouteConfig answers with.
var routeStatus = map[string]int{"ok": 200, "fail": 500}

// send sends n requests to route through instance and adds them to total.
func (d *nmDomain) send(t *testing.T, instance, route string, n int, total sent) {
	t.Helper()
	for i := range n {
		resp, err := noKeepAlive.Get(fmt.Sprintf("http://%s/%s/%d", d.instances[instance][0], route, i))
		if err != nil {
			t.Fatalf("request %d to %s via %s: %v", i, route, instance, err)
		}
		resp.Body.Close()
		if want := routeStatus[route]; resp.StatusCode != want {
			t.Fatalf("request %d to %s via %s: %d, want %d", i, route, instance, resp.StatusCode, want)
		}
	}
	total.add(instance, route, n)
}

// waitTotals waits until the totals of the admin node the CLI is logged
// in to are exactly what was sent: in all, by status, for route fail, and
// for each instance. Counting more would be as wrong as counting less, and
// fails at once.
func waitTotals(t *testing.T, cli *adminCLI, what string, want sent) {
	t.Helper()
	check := func(of string, got apitypes.MetricsValues, want answered) (bool, string) {
		state := fmt.Sprintf("%s: requests %d (2xx %d, 5xx %d), want %d ok + %d fail", of, got.Requests, got.Status.S2xx, got.Status.S5xx, want.ok, want.fail)
		if got.Requests > uint64(want.ok+want.fail) || got.Status.S2xx > uint64(want.ok) || got.Status.S5xx > uint64(want.fail) {
			t.Fatalf("counted more than was answered: %s", state)
		}
		return got.Requests == uint64(want.ok+want.fail) && got.Status.S2xx == uint64(want.ok) && got.Status.S5xx == uint64(want.fail), state
	}
	until(t, what, func() (bool, string) {
		all := want.total()
		got, err := metricsTotals(t, cli, "", "")
		if err != nil {
			return false, err.Error()
		}
		ok, state := check("all", got, all)
		if !ok {
			return false, state
		}
		fail, err := metricsTotals(t, cli, "fail", "")
		if err != nil {
			return false, err.Error()
		}
		if ok, state := check("route fail", fail, answered{fail: all.fail}); !ok {
			return false, state
		}
		for _, instance := range slices.Sorted(maps.Keys(want)) {
			got, err := metricsTotals(t, cli, "", instance)
			if err != nil {
				return false, err.Error()
			}
			if ok, state := check("instance "+instance, got, want[instance]); !ok {
				return false, state
			}
		}
		return true, state
	})
}

// Requests through two gateways on two node managers are counted exactly
// by the admin node: while it runs, across its restart (the node managers
// spool meanwhile), and across a gateway's restart (its last counts are
// handed over when it stops).
func TestDomainMetricsExact(t *testing.T) {
	t.Parallel()
	up := startOkFailUpstream(t)
	d := newGossipDomain(t, nil)
	fast := hostOpts{run: []string{"--traffic-interval", "1s"}}
	h1, h2 := d.joinHost(t, "h1", fast), d.joinHost(t, "h2", fast)
	d.member(t, "gw-a", nmGroup, h1)
	d.member(t, "gw-b", nmGroup, h2)
	f := filepath.Join(d.work, "routes.yaml")
	writeFile(t, f, twoRouteConfig(up.addr))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", nmGroup)
	d.cli.ok(t, "", "deploy", "--group", nmGroup, "-m", "two routes", "--no-wait")
	h1.start(t)
	h2.start(t)
	d.waitPeers(t, "the group formed", []string{"gw-a", "gw-b"}, d.formed(1))

	total := sent{}
	d.send(t, "gw-a", "ok", 30, total)
	d.send(t, "gw-b", "ok", 20, total)
	d.send(t, "gw-a", "fail", 10, total)
	d.send(t, "gw-b", "fail", 5, total)
	waitTotals(t, d.cli, "the first requests counted", total)

	// The admin node goes away while traffic flows: the node managers keep
	// the batches until it is back.
	d.admin.signal(syscall.SIGTERM)
	d.admin.exit(t, 15*time.Second)
	d.send(t, "gw-a", "ok", 20, total)
	d.send(t, "gw-b", "fail", 10, total)
	// Both node managers hold what they collected meanwhile before the
	// admin node is back.
	for _, h := range []*gossipHost{h1, h2} {
		until(t, "node manager "+h.name+" spooling a traffic batch", func() (bool, string) {
			n, err := gaugeAt("http://"+h.addr+"/metrics", metrics.NodeTrafficSpoolBatches)
			if err != nil {
				return false, err.Error()
			}
			return n >= 1, fmt.Sprintf("%s %v", metrics.NodeTrafficSpoolBatches, n)
		})
	}
	d.admin = startAdminNode(t, d.adminDir, d.adminAddr, d.fingerprint)
	waitTotals(t, d.cli, "the requests sent while the admin node was down counted once", total)

	// A gateway restarted mid-run hands its last counts to its node
	// manager as it stops.
	d.send(t, "gw-b", "ok", 10, total)
	if code, body := localRequest(t, h2.addr, "POST", "/v1/instances/gw-b/restart", "Authorization: Bearer "+readLocalToken(t, h2.dir)); code != http.StatusAccepted {
		t.Fatalf("restart gw-b: %d %s", code, body)
	}
	until(t, "gw-b serving again", func() (bool, string) {
		r, err := noKeepAlive.Get("http://" + d.instances["gw-b"][0] + "/ok/probe")
		if err != nil {
			return false, err.Error()
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("gw-b answered %s while restarting", r.Status)
		}
		total.add("gw-b", "ok", 1)
		return true, r.Status
	})
	d.send(t, "gw-b", "ok", 10, total)
	waitTotals(t, d.cli, "the requests around a gateway restart counted once", total)
}
