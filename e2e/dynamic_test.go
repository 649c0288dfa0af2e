package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// settingsDeadline is the documented bound (docs/gateway.md#dynamic-settings)
// from `gatehouse settings set` returning to the running gateway applying
// the settings.
const settingsDeadline = time.Second

// runningSettings reads the settings an instance's gateway reports in its
// /status.
func (d *nmDomain) runningSettings(t *testing.T, instance string) localapi.Settings {
	t.Helper()
	resp, err := http.Get("http://" + d.instances[instance][1] + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Settings *localapi.Settings `json:"settings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Settings == nil {
		return localapi.Settings{}
	}
	return *r.Settings
}

// waitSettings waits, at most settingsDeadline, until the instance's
// gateway runs settings that satisfy ok.
func (d *nmDomain) waitSettings(t *testing.T, instance, what string, ok func(localapi.Settings) bool) {
	t.Helper()
	waitfor.Cond(t, settingsDeadline, what, func() (bool, string) {
		s := d.runningSettings(t, instance)
		return ok(s), fmt.Sprintf("%+v", s)
	})
}

// logLines counts the lines of the instance's gateway log that hold s.
func (d *nmDomain) logLines(t *testing.T, instance, s string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(d.nodeDir, "instances", instance, "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), s)
}

// TestDynamicSettings: the log level, the access log with sampling and
// the tracing of a route change at run time through `gatehouse settings`,
// each in force in the running gateway (same pid) within settingsDeadline;
// a trace ends by itself when its time is up.
func TestDynamicSettings(t *testing.T) {
	up := startUpstream(t, "one", nil)
	dead := deadAddr(t)
	d := newNMDomain(t)
	d.joinNode(t)
	d.createInstance(t, "web-1")
	f := filepath.Join(d.work, "config.yaml")
	writeFile(t, f, fmt.Sprintf(`upstreams:
  - name: api
    targets:
      - address: %s
  - name: gone
    targets:
      - address: %s
services:
  - name: api
    upstream: api
    routes:
      - name: orders
        paths: ["/orders/*"]
      - name: all
        paths: ["/*"]
  - name: gone
    upstream: gone
    routes:
      - name: dead
        paths: ["/dead/*"]
`, up.addr, dead))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", nmGroup)
	d.cli.ok(t, "", "deploy", "--group", nmGroup, "-m", "first", "--no-wait")
	d.startNode(t)
	views := d.waitLocal(t, "web-1 running deployment #1", d.appliedEverywhere(1))
	pid := views["web-1"].PID
	samePID := func() {
		t.Helper()
		v, err := d.localInstances(t)
		if err != nil {
			t.Fatal(err)
		}
		if v["web-1"].PID != pid {
			t.Fatalf("web-1 runs as pid %d, not %d: it was restarted", v["web-1"].PID, pid)
		}
	}
	get := func(path string) int {
		t.Helper()
		resp, err := noKeepAlive.Get("http://" + d.instances["web-1"][0] + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const debugLine = "[DEBUG] gateway.proxy: upstream request failed"

	// At info, a failed upstream request logs no debug line; it is
	// written before the 502 is.
	if code := get("/dead/1"); code != http.StatusBadGateway {
		t.Fatalf("GET /dead/1: %d", code)
	}
	if n := d.logLines(t, "web-1", debugLine); n != 0 {
		t.Fatalf("%d debug lines at level info", n)
	}

	// The log level.
	d.cli.ok(t, "", "settings", "set", "--group", nmGroup, "--log-level", "debug")
	d.waitSettings(t, "web-1", "web-1 at log level debug", func(s localapi.Settings) bool { return s.LogLevel == "debug" })
	if code := get("/dead/2"); code != http.StatusBadGateway {
		t.Fatalf("GET /dead/2: %d", code)
	}
	if n := d.logLines(t, "web-1", debugLine); n == 0 {
		t.Error("no debug line once the level is debug")
	}
	samePID()

	// The access log, 10% of the requests.
	d.cli.ok(t, "", "settings", "set", "--group", nmGroup, "--access-log", "on", "--access-log-sample", "10")
	d.waitSettings(t, "web-1", "web-1 logging 10% of its requests", func(s localapi.Settings) bool { return s.AccessLogPercent == 10 })
	for i := range 100 {
		if code := get(fmt.Sprintf("/x/%d", i)); code != http.StatusOK {
			t.Fatalf("GET /x/%d: %d", i, code)
		}
	}
	const accessLine = "gateway.access: access:"
	until(t, "10 access lines for 100 requests", func() (bool, string) {
		n := d.logLines(t, "web-1", accessLine)
		return n == 10, fmt.Sprintf("%d lines", n)
	})
	waitfor.Holds(t, time.Second, "10 access lines", func() (bool, string) {
		n := d.logLines(t, "web-1", accessLine)
		return n == 10, fmt.Sprintf("%d lines", n)
	})
	samePID()

	// Tracing of one route on the instance, for 3 s.
	d.cli.ok(t, "", "settings", "set", "--instance", "web-1", "--trace-route", "api/orders", "--trace-for", "3s")
	d.waitSettings(t, "web-1", "web-1 tracing api/orders", func(s localapi.Settings) bool {
		return s.TraceRoute == "api/orders" && s.LogLevel == "debug" && s.AccessLogPercent == 10
	})
	const traceLine = "gateway.trace: trace:"
	get("/orders/1")
	get("/other/1")
	until(t, "one trace line", func() (bool, string) {
		n := d.logLines(t, "web-1", traceLine)
		return n == 1, fmt.Sprintf("%d lines", n)
	})
	// It ends by itself, with nothing asked of anyone.
	until(t, "the trace ended", func() (bool, string) {
		s := d.runningSettings(t, "web-1")
		return s.TraceRoute == "" && d.logLines(t, "web-1", "request tracing ended") == 1, fmt.Sprintf("%+v", s)
	})
	get("/orders/2")
	waitfor.Holds(t, time.Second, "no trace line after the end", func() (bool, string) {
		n := d.logLines(t, "web-1", traceLine)
		return n == 1, fmt.Sprintf("%d lines", n)
	})
	samePID()

	// What the gateway runs is shown by the admin node.
	var is apitypes.InstanceSettings
	until(t, "the admin node showing what web-1 runs", func() (bool, string) {
		is = apitypes.InstanceSettings{}
		d.cli.json(t, &is, "settings", "get", "--instance", "web-1")
		return is.Applied != nil && is.Applied.LogLevel == "debug" && is.Applied.AccessLogPercent == 10 && is.Applied.TraceRoute == "",
			fmt.Sprintf("%+v", is.Applied)
	})
	status := d.cli.ok(t, "", "status")
	if !strings.Contains(status, "Dynamic settings (gatehouse settings):") || !strings.Contains(status, "instance web-1 runs") {
		t.Errorf("status does not show the settings:\n%s", status)
	}
	var audit []apitypes.AuditEntry
	d.cli.json(t, &audit, "audit", "--action", "settings.group.set")
	if len(audit) != 2 {
		t.Errorf("%d audit entries of settings.group.set, want 2: %+v", len(audit), audit)
	}

	// Unset: back to the start-up level.
	d.cli.ok(t, "", "settings", "unset", "--group", nmGroup, "--all")
	d.waitSettings(t, "web-1", "web-1 as started", func(s localapi.Settings) bool { return s == localapi.Settings{} })
	before := d.logLines(t, "web-1", debugLine)
	get("/dead/3")
	if n := d.logLines(t, "web-1", debugLine); n != before {
		t.Errorf("debug lines after the level was unset: %d, was %d", n, before)
	}
	samePID()
}
