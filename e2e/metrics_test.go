package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
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

// metricsTotals asks the admin node, through the CLI, for the group's
// totals over the last hour, optionally for one route.
func (d *gossipDomain) metricsTotals(t *testing.T, route string) (apitypes.MetricsValues, error) {
	args := []string{"metrics", "--group", nmGroup, "--since", "1h", "-o", "json"}
	if route != "" {
		args = append(args, "--route", route)
	}
	out, errOut, code := d.cli.run(t, "", args...)
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

// sent is what the test sent and expects the domain to have counted.
type sent struct{ ok, fail int }

func (d *gossipDomain) send(t *testing.T, instance, route string, n int, total *sent) {
	t.Helper()
	for i := range n {
		resp, err := noKeepAlive.Get(fmt.Sprintf("http://%s/%s/%d", d.instances[instance][0], route, i))
		if err != nil {
			t.Fatalf("request %d to %s via %s: %v", i, route, instance, err)
		}
		resp.Body.Close()
		want := map[string]int{"ok": 200, "fail": 500}[route]
		if resp.StatusCode != want {
			t.Fatalf("request %d to %s via %s: %d, want %d", i, route, instance, resp.StatusCode, want)
		}
	}
	if route == "ok" {
		total.ok += n
	} else {
		total.fail += n
	}
}

// waitTotals waits until the admin node's totals are exactly what was
// sent; counting more would be as wrong as counting less.
func (d *gossipDomain) waitTotals(t *testing.T, what string, want sent) {
	t.Helper()
	until(t, what, func() (bool, string) {
		all, err := d.metricsTotals(t, "")
		if err != nil {
			return false, err.Error()
		}
		fail, err := d.metricsTotals(t, "fail")
		if err != nil {
			return false, err.Error()
		}
		got := fmt.Sprintf("requests %d (2xx %d, 5xx %d), route fail %d", all.Requests, all.Status.S2xx, all.Status.S5xx, fail.Requests)
		if all.Requests > uint64(want.ok+want.fail) {
			t.Fatalf("counted more than was sent: %s, want %d ok + %d fail", got, want.ok, want.fail)
		}
		return all.Requests == uint64(want.ok+want.fail) && all.Status.S2xx == uint64(want.ok) &&
			all.Status.S5xx == uint64(want.fail) && fail.Requests == uint64(want.fail), got
	})
}

// Requests through two gateways on two node managers are counted exactly
// by the admin node: while it runs, across its restart (the node managers
// spool meanwhile), and across a gateway's restart (its last counts are
// handed over when it stops).
func TestDomainMetricsExact(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "api", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fail/") {
			http.Error(w, "broken", 500)
			return
		}
		w.Write([]byte("ok"))
	})
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

	var total sent
	d.send(t, "gw-a", "ok", 30, &total)
	d.send(t, "gw-b", "ok", 20, &total)
	d.send(t, "gw-a", "fail", 10, &total)
	d.send(t, "gw-b", "fail", 5, &total)
	d.waitTotals(t, "the first requests counted", total)

	// The admin node goes away while traffic flows: the node managers keep
	// the batches until it is back.
	d.admin.signal(syscall.SIGTERM)
	d.admin.exit(t, 15*time.Second)
	d.send(t, "gw-a", "ok", 20, &total)
	d.send(t, "gw-b", "fail", 10, &total)
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
	d.waitTotals(t, "the requests sent while the admin node was down counted once", total)

	// A gateway restarted mid-run hands its last counts to its node
	// manager as it stops.
	d.send(t, "gw-b", "ok", 10, &total)
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
		total.ok++
		return true, r.Status
	})
	d.send(t, "gw-b", "ok", 10, &total)
	d.waitTotals(t, "the requests around a gateway restart counted once", total)
}
