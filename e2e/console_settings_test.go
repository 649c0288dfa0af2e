package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// TestConsoleSetsDynamicSettings: an operator of g1 (settings:write, no
// more) sets g1's log level on the group's page and gw-a's access-log
// sampling on gw-a's page, in a real Chromium; gw-a's gateway runs both
// (same process), and gw-a's page, opened before and never reloaded,
// shows what the gateway reports as each arrives. A trace without its
// duration is refused by its field, the route typed kept. The changes
// and the refusal are audited as the operator's.
func TestConsoleSetsDynamicSettings(t *testing.T) {
	browser := startBrowser(t)
	up := startUpstream(t, "u1", nil)
	d := newNMDomain(t)
	d.joinNode(t)
	d.createInstance(t, "gw-a")
	d.createInstance(t, "gw-b")
	if n := d.deployTo(t, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	d.startNode(t)
	before := d.waitLocal(t, "every instance running deployment #1", d.appliedEverywhere(1))
	_, _, token, _ := d.cli.saved(t)
	api := newAdminAPI(t, d.url, d.caFile, token)
	const opsPassword = "operator console password"
	api.addUser(t, "ops", opsPassword, "operator", `{"groups":["g1"]}`)
	reported := func(setting string) string {
		return fmt.Sprintf(`(document.querySelector('#instance-settings tr[data-setting="%s"] .reported')||{}).textContent`, setting)
	}

	// gw-a's page, opened first and left open: marked, never reloaded.
	watch := newTab(t, browser)
	watch.do(t, "open the console", chromedp.Navigate(d.url+"/ui/"))
	watch.signIn(t, "ops", opsPassword)
	watch.do(t, "open gw-a's page from the topology",
		holds(`location.pathname === "/ui/"`),
		chromedp.Navigate(d.url+"/ui/topology"),
		click(`#topology .cell[data-instance="gw-a"] a`),
		holds(`location.pathname === "/ui/instances/gw-a" && document.querySelector("#instance").dataset.status === "Healthy"`),
		holds(reported("log_level")+` === "as started" || `+reported("log_level")+` === "not reported"`))
	eval[bool](t, watch, "mark the page", `(window.consoleTestMark = "instance", true)`)

	ops := newTab(t, browser)
	ops.do(t, "open the console", chromedp.Navigate(d.url+"/ui/"))
	ops.signIn(t, "ops", opsPassword)
	ops.do(t, "set g1's log level to debug on its page",
		holds(`location.pathname === "/ui/"`),
		chromedp.Navigate(d.url+"/ui/groups/g1"),
		chromedp.WaitVisible(chromedp.CSS("#settings-form")),
		chromedp.SetValue(chromedp.CSS("#settings-log-level"), "debug"),
		click("#settings-save"),
		holds(`(document.querySelector("#done")||{}).textContent === "Dynamic settings saved."`),
		holds(`(document.querySelector('#group-settings tr[data-setting="log_level"] .value')||{}).textContent === "debug"`))
	watch.do(t, "gw-a's open page shows its gateway reporting level debug, without a reload",
		holds(`window.consoleTestMark === "instance" && `+reported("log_level")+` === "debug" &&
			document.querySelector('#instance-settings tr[data-setting="log_level"] .group').textContent === "debug"`))

	ops.do(t, "a trace without its duration is refused by its field, the route kept",
		click(`#instances tr[data-instance="gw-a"] a.instance`),
		chromedp.WaitVisible(chromedp.CSS("#settings-form")),
		chromedp.SetValue(chromedp.CSS("#settings-trace-route"), "api/all"),
		click("#settings-save"),
		holds(`(document.querySelector("#settings-error")||{dataset:{}}).dataset.field === "trace.for" &&
			document.querySelector("#settings-trace-route").value === "api/all"`))
	// chromedp's SetValue takes an empty value for a failure.
	eval[bool](t, ops, "clear the trace's route", `(document.querySelector("#settings-trace-route").value = "", true)`)
	ops.do(t, "set gw-a's access log on, 10%, on its page",
		chromedp.SetValue(chromedp.CSS("#settings-access-log"), "on"),
		chromedp.SetValue(chromedp.CSS("#settings-sample"), "10"),
		click("#settings-save"),
		holds(`(document.querySelector("#done")||{}).textContent === "Settings saved." &&
			(document.querySelector('#instance-settings tr[data-setting="access_log"] .own')||{}).textContent === "on, 10%"`))
	watch.do(t, "gw-a's open page shows its gateway reporting the access log at 10%, without a reload",
		holds(`window.consoleTestMark === "instance" && `+reported("access_log")+` === "on, 10%" && `+reported("log_level")+` === "debug" &&
			document.querySelector('#instance-settings tr[data-setting="access_log"] .effective').textContent === "on, 10%"`))
	ops.do(t, "gw-a's page after the change shows the report too", holds(reported("access_log")+` === "on, 10%"`))
	ops.screenshot(t, "instance")

	// The gateways run them, in the processes they ran before.
	d.waitSettings(t, "gw-a", "gw-a at debug with 10% of its access log", func(s localapi.Settings) bool {
		return s.LogLevel == "debug" && s.AccessLogPercent == 10
	})
	d.waitSettings(t, "gw-b", "gw-b at debug, its access log off", func(s localapi.Settings) bool {
		return s.LogLevel == "debug" && s.AccessLogPercent == 0
	})
	now, err := d.localInstances(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"gw-a", "gw-b"} {
		if now[in].PID != before[in].PID {
			t.Errorf("%s runs as pid %d, not %d: it was restarted", in, now[in].PID, before[in].PID)
		}
	}
	// The refused trace reached the API: audited as an error.
	for action, want := range map[string]string{"settings.group.set": "ops ok", "settings.instance.set": "ops error, ops ok"} {
		var entries []apitypes.AuditEntry
		d.cli.json(t, &entries, "audit", "--action", action)
		var got []string
		for _, e := range entries {
			got = append(got, e.User+" "+e.Result)
		}
		slices.Sort(got)
		if strings.Join(got, ", ") != want {
			t.Errorf("audit of %s: %q, want %s", action, got, want)
		}
	}
	for _, tb := range []*tab{ops, watch} {
		if n := tb.dialogs.Load(); n != 0 {
			t.Errorf("%d JavaScript dialogs opened", n)
		}
	}
}
