package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// TestConsoleManagesTheFleet drives the console in a real Chromium
// against a real domain (admin node, node manager on host h1): a group
// created from the overview, an instance of it added on h1 and seen
// become Healthy on the open page, restarted from the page under load
// (the page shows the new process without a reload; no request fails),
// deleted, and the group deleted, each step audited as its user's.
func TestConsoleManagesTheFleet(t *testing.T) {
	browser := startBrowser(t)
	up := startUpstream(t, "one", nil)
	d := newNMDomain(t)
	d.joinNode(t)
	d.startNode(t)
	_, _, token, _ := d.cli.saved(t)
	api := newAdminAPI(t, d.url, d.caFile, token)
	const opsPassword = "ops console password"
	api.addUser(t, "ops", opsPassword, "domain-admin", `{"domain":true}`)

	ops := newTab(t, browser)
	ops.do(t, "open the console", chromedp.Navigate(d.url+"/ui/"))
	ops.signIn(t, "ops", opsPassword)
	ops.do(t, "create group shop from the overview",
		holds(`location.pathname === "/ui/" && !!document.querySelector("#groups")`),
		click("#new-group"),
		chromedp.WaitVisible(chromedp.CSS("#group-form")),
		chromedp.SetValue(chromedp.CSS("#group-name"), "shop"),
		chromedp.SetValue(chromedp.CSS("#group-labels"), "team=web, env=prod"),
		chromedp.SetValue(chromedp.CSS("#group-description"), "the shop's API"),
		click("#create-group"),
		holds(`(document.querySelector("#done")||{}).textContent === "Group shop created."`),
		holds(`location.pathname === "/ui/groups/shop"`))

	// Its configuration, deployed by the CLI before it has an instance.
	f := filepath.Join(d.work, "shop.yaml")
	writeFile(t, f, routeConfig(up.addr))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", "shop")
	d.cli.ok(t, "", "deploy", "--group", "shop", "-m", "first", "--no-wait")

	listen, status := freeAddr(t), freeAddr(t)
	ops.do(t, "add instance shop-1 on h1",
		click("#add-instance"),
		chromedp.WaitVisible(chromedp.CSS("#instance-form")),
		holds(`[...document.querySelectorAll("#instance-host option")].map(o => o.value).join() === "h1"`),
		chromedp.SetValue(chromedp.CSS("#instance-name"), "shop-1"),
		chromedp.SetValue(chromedp.CSS("#instance-listen"), listen),
		chromedp.SetValue(chromedp.CSS("#instance-status-listen"), status),
		chromedp.SetValue(chromedp.CSS("#instance-gossip-listen"), freeGossipAddr(t)),
		click("#create-instance"),
		holds(`/^Instance shop-1 added/.test((document.querySelector("#done")||{}).textContent||"")`))
	eval[bool](t, ops, "mark the page", `(window.consoleTestMark = "added", true)`)
	row := `document.querySelector('#instances tr[data-instance="shop-1"]')`
	ops.do(t, "the open page shows shop-1 Healthy on #1, without a reload",
		holds(fmt.Sprintf(`(() => { const r = %s;
			return window.consoleTestMark === "added" && r && r.dataset.status === "Healthy" &&
				Number(r.children[3].textContent) > 0 && r.children[5].textContent === "#1"; })()`, row)))
	ops.screenshot(t, "fleet-group")
	d.waitLocal(t, "shop-1 running", func(v map[string]localapi.InstanceView) bool { return v["shop-1"].Ready })

	// Restarted from the page under load: the page shows another pid,
	// ready again, and no request fails.
	old := eval[string](t, ops, "read shop-1's pid", row+`.children[3].textContent`)
	if pid, err := strconv.Atoi(old); err != nil || pid <= 0 {
		t.Fatalf("the group page shows pid %q for shop-1", old)
	}
	load := startTrafficLoad(t, listen)
	counted, _ := load.counts()
	load.waitServed(t, counted, 50)
	ops.do(t, "restart shop-1 from the page",
		click(`#instances tr[data-instance="shop-1"] button.restart`),
		holds(`/^Restart of shop-1 requested/.test((document.querySelector("#done")||{}).textContent||"")`))
	eval[bool](t, ops, "mark the page", `(window.consoleTestMark = "restarted", true)`)
	ops.do(t, "the open page shows shop-1's new process, ready, without a reload",
		holds(fmt.Sprintf(`(() => { const r = %s;
			return window.consoleTestMark === "restarted" && r && r.dataset.status === "Healthy" &&
				r.children[3].textContent !== %q && Number(r.children[3].textContent) > 0 &&
				r.querySelector(".actions").dataset.generation === "1" && !r.querySelector(".restarting"); })()`, row, old)))
	counted, _ = load.counts()
	load.waitServed(t, counted, 50)
	served := load.checkNoFailure(t)
	t.Logf("requests served through shop-1 during its restart: %v", served)

	// The group is not deleted while it has an instance; the page says why.
	ops.do(t, "deleting shop with shop-1 is refused, saying why",
		click("#delete-group"), click("#confirm-delete-group"),
		holds(`/Group shop still has instances \(shop-1\): delete them first/.test((document.querySelector("#error")||{}).textContent||"")`))
	ops.do(t, "delete shop-1, confirmed",
		chromedp.Navigate(d.url+"/ui/groups/shop"),
		click(`#instances tr[data-instance="shop-1"] button.delete`),
		holds(`/^Delete instance shop-1 of group shop on host h1\?/.test((document.querySelector("#confirm-what")||{}).textContent||"")`),
		click("#confirm-delete-instance"),
		holds(`/^Instance shop-1 deleted/.test((document.querySelector("#done")||{}).textContent||"")`),
		holds(`!document.querySelector('#instances tr[data-instance="shop-1"]')`))
	d.waitLocal(t, "the node manager stopped shop-1", func(v map[string]localapi.InstanceView) bool {
		_, ok := v["shop-1"]
		return !ok
	})
	ops.do(t, "delete shop, confirmed",
		click("#delete-group"),
		holds(`/^Delete group shop with its draft/.test((document.querySelector("#confirm-what")||{}).textContent||"")`),
		click("#confirm-delete-group"),
		holds(`location.pathname === "/ui/" && (document.querySelector("#done")||{}).textContent === "Group shop deleted, with its draft and deployments."`),
		holds(`!document.querySelector('#groups tr[data-group="shop"]') && !!document.querySelector('#groups tr[data-group="g1"]')`))

	var entries []apitypes.AuditEntry
	d.cli.json(t, &entries, "audit", "--user", "ops")
	var got []string
	for _, e := range entries {
		got = append(got, e.Action+" "+e.Target+" "+e.Result)
	}
	for _, want := range []string{"group.create group/shop ok", "instance.create instance/shop-1 ok", "instance.restart instance/shop-1 ok",
		"group.delete group/shop error", "instance.delete instance/shop-1 ok", "group.delete group/shop ok"} {
		if !slices.Contains(got, want) {
			t.Errorf("the audit of ops has no %q: %q", want, got)
		}
	}
	if n := ops.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}
