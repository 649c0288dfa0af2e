package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// consoleStep bounds each step of a console test in the browser.
const consoleStep = 30 * time.Second

// tab is one browser tab, in a browser context of its own (its own
// cookies: one signed-in user), that counts the JavaScript dialogs that
// opened in it (alert(), which an injected script would call).
type tab struct {
	ctx     context.Context
	dialogs *atomic.Int32
}

// startBrowser starts one headless Chromium for the whole test; it
// skips the test when no Chromium is installed.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	switch {
	case err != nil && os.Getenv("GATEHOUSE_TEST_REQUIRE_CHROMIUM") != "":
		t.Fatalf("GATEHOUSE_TEST_REQUIRE_CHROMIUM is set and there is no chromium on PATH: %v", err)
	case err != nil:
		t.Skipf("the console tests drive a real Chromium: none on PATH (%v); apt-get install chromium", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		// The admin node's certificate is issued by the domain's own CA,
		// which this throwaway browser profile does not trust.
		chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(1280, 800))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The first run starts the browser, with the browser's own lifetime
	// (no timeout).
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return browser
}

func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	b := &tab{ctx: ctx, dialogs: &atomic.Int32{}}
	err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.dialogs.Add(1)
		}
	})
	if err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return b
}

// addUser creates a user of the domain bound to role in scope (the
// API's JSON, `{"domain":true}` or `{"groups":["g1"]}`).
func (a *adminAPI) addUser(t *testing.T, name, password, role, scope string) {
	t.Helper()
	for _, p := range []struct{ path, body string }{{"/users", `{"name":"` + name + `","password":"` + password + `"}`},
		{"/bindings", `{"user":"` + name + `","role":"` + role + `","scope":` + scope + `}`}} {
		if code, _, out := a.do(t, "POST", p.path, p.body, "Content-Type", "application/json"); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", p.path, code, out)
		}
	}
}

// do runs steps within consoleStep; on failure it shows where the tab is
// and what it says.
func (b *tab) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, consoleStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		shot, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		text, _ := chromedp.Run(shot, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("%s: %v\nthe page:\n%s", what, err, text)
	}
}

// eval evaluates a JavaScript expression in the tab (awaiting a promise).
func eval[T any](t *testing.T, b *tab, what, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, consoleStep)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// holds waits, within the step's time, for a JavaScript predicate to hold
// in the tab's page. A page that navigates away (a form submitted just
// before) ends a wait in the browser; it starts again in the page that
// replaced it, once that page is ready.
func holds(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for {
			_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0))(ctx, tg)
			if err == nil || ctx.Err() != nil {
				return chromedp.Void{}, err
			}
			if _, err := chromedp.WaitReady(chromedp.CSS("body"))(ctx, tg); err != nil {
				return chromedp.Void{}, err
			}
		}
	}
}

// screenshot writes the page as name.png into the directory that
// GATEHOUSE_CONSOLE_SCREENSHOTS names, if any: how docs/console.md's
// pictures are made (GATEHOUSE_CONSOLE_SCREENSHOTS=$PWD/docs/console).
func (b *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("GATEHOUSE_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, consoleStep)
	defer cancel()
	data, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// click waits for the element and clicks it in the page. Not by mouse
// position: the live part above it is replaced every second and may move
// it between the measure and the click.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(sel)),
		func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(e => (e.click(), true))(document.querySelector(%q))`, sel))(ctx, tg)
			return chromedp.Void{}, err
		})
}

// signIn fills the sign-in form on the page the tab is on.
func (b *tab) signIn(t *testing.T, user, password string) {
	t.Helper()
	b.do(t, "sign in as "+user,
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SetValue(chromedp.CSS("#user-field"), user),
		chromedp.SetValue(chromedp.CSS("#password-field"), password),
		click("#signin"),
	)
}

// TestConsoleInBrowser drives the console in a real Chromium against a
// real domain (admin node, node manager, two gateways of g1): sign-in
// (a wrong password refused, then the right one), the overview showing g1
// with 2 Healthy instances, a gateway killed -9 and restarted shown on the
// open group page without a reload, the topology, the draft edited with
// two mistakes (both listed by field path) then fixed, a deploy whose
// message is markup (shown as text, no script run) and whose roll-out
// stays in progress while a third instance never reports (pending, with
// the reason) and completes on the open page once it is deleted, a
// confirmed rollback, the diff of two deployments picked, a deployment
// both gateways refuse shown failed with each one's reason; environments (a
// value shown as text, a secret never), users, bindings and trusted
// domains administered; a viewer of g1 alone sees only g1, is offered no
// deploy and no administration, and its forged POSTs are refused (403,
// audited) as is a POST without the CSRF token; the audit log by pages
// and time range; the traffic page counting the requests sent.
func TestConsoleInBrowser(t *testing.T) {
	browser := startBrowser(t)
	up := startUpstream(t, "u1", nil)
	// setUpNode's domain, its traffic read every second.
	d := newNMDomain(t)
	d.joinNode(t)
	d.createInstance(t, "gw-a")
	d.createInstance(t, "gw-b")
	if n := d.deployTo(t, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	d.startNode(t, "--traffic-interval", "1s")
	d.waitLocal(t, "every instance running deployment #1", d.appliedEverywhere(1))
	d.waitRolledOut(t, 1)
	_, _, token, _ := d.cli.saved(t)
	api := newAdminAPI(t, d.url, d.caFile, token)
	post := func(path, body string) {
		t.Helper()
		if code, _, out := api.do(t, "POST", path, body, "Content-Type", "application/json"); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, code, out)
		}
	}
	const opsPassword, viewerPassword = "ops console password", "viewer console password"
	api.addUser(t, "ops", opsPassword, "domain-admin", `{"domain":true}`)
	api.addUser(t, "watch", viewerPassword, "viewer", `{"groups":["g1"]}`)
	post("/groups", `{"name":"other","labels":{"team":"b"}}`)

	ops := newTab(t, browser)
	ops.do(t, "open the admin node's root", chromedp.Navigate(d.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login")))
	ops.signIn(t, "ops", "not the password")
	ops.do(t, "a wrong password refused", holds(`(document.querySelector("#login-error")||{}).textContent === "invalid user or password"`))
	ops.signIn(t, "ops", opsPassword)
	ops.do(t, "the overview shows g1 with 2 Healthy instances",
		holds(`(document.querySelector('#groups tr[data-group="g1"] [data-status="Healthy"]')||{}).textContent === "2 Healthy"`),
		holds(`!!document.querySelector('#groups tr[data-group="other"]')`),
		holds(`location.pathname === "/ui/"`))
	ops.screenshot(t, "overview")

	// kill -9 a gateway: its node manager starts another process, which
	// the open group page shows without a reload.
	ops.do(t, "open g1's page", chromedp.Navigate(d.url+"/ui/groups/g1"),
		holds(`document.querySelectorAll('#instances tr[data-status="Healthy"]').length === 2`))
	pidCell := `document.querySelector('#instances tr[data-instance="gw-a"] td:nth-child(4)').textContent`
	old := eval[string](t, ops, "read gw-a's pid", pidCell)
	pid, err := strconv.Atoi(old)
	if err != nil || pid <= 0 {
		t.Fatalf("the group page shows pid %q for gw-a", old)
	}
	eval[bool](t, ops, "mark the page", `window.consoleTestMark = true`)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 gw-a (%d): %v", pid, err)
	}
	ops.do(t, "the page shows gw-a's new process and a restart, without a reload",
		holds(fmt.Sprintf(`(() => { const r = document.querySelector('#instances tr[data-instance="gw-a"]');
			return window.consoleTestMark === true && r && r.dataset.status === "Healthy" &&
				r.children[3].textContent !== %q && r.children[3].textContent !== "0" && Number(r.children[4].textContent) >= 1; })()`, old)))

	ops.do(t, "the topology shows each instance with pid, restarts and deployment",
		chromedp.Navigate(d.url+"/ui/topology"),
		holds(`/pid \d+ · restarts \d+ · #1/.test((document.querySelector('#topology .cell[data-instance="gw-b"]')||{}).textContent||"")`),
		holds(`document.querySelectorAll('#topology .cell').length === 2`))
	ops.screenshot(t, "topology")

	// Deploy a changed draft with a message that is markup: shown as text.
	// Edit the draft in the console: two mistakes, both listed by their
	// field path when validated; fixed, validated and saved.
	up2 := startUpstream(t, "u2", nil)
	edit := func(bad bool) string {
		return fmt.Sprintf(`(() => { const ta = document.querySelector("#draft-yaml");
			let v = ta.value.replace(%q, %q);
			if (%t) v = v.replace("upstream: api", "upstream: nope").replace("- /*", "- nope");
			ta.value = v; return true; })()`, up.addr, up2.addr, bad)
	}
	ops.do(t, "open g1's draft", chromedp.Navigate(d.url+"/ui/groups/g1"), click("#draft-link"),
		holds(fmt.Sprintf(`document.querySelector("#draft-yaml").value.includes(%q)`, up.addr)))
	eval[bool](t, ops, "make two mistakes", edit(true))
	ops.do(t, "validation lists both mistakes by field path", click("#validate"),
		holds(`!!document.querySelector('#draft-errors li[data-field="services[0].upstream"]') &&
			!!document.querySelector('#draft-errors li[data-field="services[0].routes[0].paths[0]"]') &&
			document.querySelectorAll("#draft-errors li").length === 2`))
	ops.do(t, "reopen the draft", chromedp.Navigate(d.url+"/ui/groups/g1/draft"), chromedp.WaitVisible(chromedp.CSS("#draft-yaml")))
	eval[bool](t, ops, "edit the draft right", edit(false))
	ops.do(t, "validate and save the draft", click("#validate"),
		holds(`/^Valid: sha256:/.test((document.querySelector("#draft-valid")||{}).textContent||"")`),
		click("#save-draft"),
		holds(`(document.querySelector("#done")||{}).textContent === "Draft saved."`))
	// A third instance of g1 on a host without a node manager never
	// reports: the deploy's roll-out stays in progress, gw-c pending with
	// the reason, until gw-c is deleted.
	post("/hosts", `{"name":"h2"}`)
	d.cli.ok(t, "", "instance", "create", "gw-c", "--group", nmGroup, "--host", "h2", "--listen", freeAddr(t),
		"--status-listen", freeAddr(t), "--gossip-listen", freeGossipAddr(t))
	const markup = `<img src=x onerror=alert(1)>`
	ops.do(t, "deploy from g1's page",
		chromedp.Navigate(d.url+"/ui/groups/g1"),
		holds(fmt.Sprintf(`/changed\s*upstream\s*api\s*targets\[0\]\.address\s*"%s"\s*"%s"/.test(document.querySelector("#draft-diff").textContent)`, up.addr, up2.addr)),
		chromedp.WaitVisible(chromedp.CSS("#deploy-message")),
		chromedp.SetValue(chromedp.CSS("#deploy-message"), markup),
		click("#deploy"),
		holds(`(document.querySelector("#done")||{}).textContent === "Deployed #2."`),
		holds(fmt.Sprintf(`(document.querySelector('#deployments tr[data-number="2"] .message')||{}).textContent === %q`, markup)),
		holds(`(() => { const st = i => (document.querySelector('#rollout-instances tr[data-instance="' + i + '"]')||{dataset:{}}).dataset.state;
			return /#2:\s+2\/3 up to date\s+in progress/.test(document.querySelector("#rollout").textContent) &&
				st("gw-a") === "applied" && st("gw-b") === "applied" && st("gw-c") === "pending" &&
				document.querySelector('#rollout-instances tr[data-instance="gw-c"] .reason').textContent === "never reported by its node manager"; })()`))
	ops.screenshot(t, "rollout")
	eval[bool](t, ops, "mark the page", `(window.consoleTestMark = "rollout", true)`)
	if code, _, out := api.do(t, "DELETE", "/instances/gw-c", ""); code != http.StatusNoContent {
		t.Fatalf("delete gw-c: %d %s", code, out)
	}
	ops.do(t, "the open page shows the roll-out complete once gw-c is gone, without a reload",
		holds(`window.consoleTestMark === "rollout" && /#2:\s+2\/2 up to date\s+complete/.test(document.querySelector("#rollout").textContent) &&
			document.querySelector("#rollout").dataset.state === "complete" && !document.querySelector('#rollout-instances tr[data-instance="gw-c"]')`))
	ops.screenshot(t, "group")
	ops.do(t, "the diff of #2 from #1",
		click(`#deployments tr[data-number="2"] a.diff`),
		holds(fmt.Sprintf(`document.title.startsWith("g1: #1 → #2") && document.querySelector("table.changes").textContent.includes(%q)`, up2.addr)),
		chromedp.Navigate(d.url+"/ui/groups/g1"),
		chromedp.WaitVisible(chromedp.CSS(`#deployments tr[data-number="1"] button.rollback`)))
	if n := eval[int](t, ops, "count images", `document.querySelectorAll("img").length`); n != 0 {
		t.Errorf("the page has %d img elements: the message was not escaped", n)
	}
	ops.do(t, "roll back to #1 with confirmation",
		click(`#deployments tr[data-number="1"] button.rollback`),
		chromedp.WaitVisible(chromedp.CSS("#confirm-form")),
		click("#confirm-rollback"),
		holds(`(document.querySelector("#done")||{}).textContent === "Rolled back: deployed #3."`),
		holds(`/#3:\s+2\/2 up to date\s+complete/.test(document.querySelector("#rollout").textContent)`))
	ops.do(t, "the diff of any two deployments, picked",
		chromedp.SetValue(chromedp.CSS("#diff-from"), "3"),
		chromedp.SetValue(chromedp.CSS("#diff-to"), "2"),
		click("#diff-show"),
		holds(fmt.Sprintf(`document.title.startsWith("g1: #3 → #2") && /targets\[0\]\.address\s*"%s"\s*"%s"/.test(document.querySelector("table.changes").textContent)`, up.addr, up2.addr)))

	// A deployment both gateways refuse (a plugin they do not have): the
	// roll-out is shown failed, each instance with its gateway's reason.
	refused := filepath.Join(t.TempDir(), "draft.yaml")
	writeFile(t, refused, pluginRouteConfig(up.addr, "not-installed"))
	d.cli.ok(t, "", "config", "apply", "-f", refused, "--group", nmGroup)
	ops.do(t, "deploy a configuration both gateways refuse",
		chromedp.Navigate(d.url+"/ui/groups/g1"),
		chromedp.WaitVisible(chromedp.CSS("#deploy-message")),
		chromedp.SetValue(chromedp.CSS("#deploy-message"), "needs a plugin"),
		click("#deploy"),
		holds(`(document.querySelector("#done")||{}).textContent === "Deployed #4."`),
		holds(`(() => { const rows = [...document.querySelectorAll('#rollout-instances tr[data-instance]')];
			return document.querySelector("#rollout").dataset.state === "failed" && /#4:\s+0\/2 up to date\s+failed/.test(document.querySelector("#rollout").textContent) &&
				rows.length === 2 && rows.every(r => r.dataset.state === "refused" && /deployment 4 refused: .*not-installed/.test(r.querySelector(".reason").textContent)); })()`))

	// Administration, in the browser: values shown (as text), secrets
	// never; users, bindings and trusted domains.
	const secretValue = "console secret value"
	partnerKey, _, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	ops.do(t, "set a value and a secret of environment prod",
		click("#nav-environments"),
		chromedp.WaitVisible(chromedp.CSS("#value-set")),
		chromedp.SetValue(chromedp.CSS(`#value-set input[name="env"]`), "prod"),
		chromedp.SetValue(chromedp.CSS(`#value-set input[name="name"]`), "BANNER"),
		chromedp.SetValue(chromedp.CSS(`#value-set input[name="value"]`), markup),
		click(`#value-set button`),
		holds(fmt.Sprintf(`(document.querySelector('[data-env="prod"] .values tr[data-name="BANNER"] .value')||{}).textContent === %q`, markup)),
		chromedp.SetValue(chromedp.CSS(`#secret-set input[name="env"]`), "prod"),
		chromedp.SetValue(chromedp.CSS(`#secret-set input[name="name"]`), "API_KEY"),
		chromedp.SetValue(chromedp.CSS(`#secret-set input[name="value"]`), secretValue),
		click(`#secret-set button`),
		holds(`(document.querySelector('#done')||{}).textContent === "Secret prod.API_KEY set." &&
			document.querySelector('[data-env="prod"] .secrets tr[data-name="API_KEY"] .value').textContent === "set"`))
	if html := eval[string](t, ops, "read the page", `document.documentElement.outerHTML`); strings.Contains(html, secretValue) {
		t.Error("the environments page shows the secret's value")
	}
	ops.screenshot(t, "environments")
	ops.do(t, "create a user, disable it, bind it to g1",
		click("#nav-users"),
		chromedp.WaitVisible(chromedp.CSS("#user-create")),
		chromedp.SetValue(chromedp.CSS(`#user-create input[name="name"]`), "eve"),
		chromedp.SetValue(chromedp.CSS(`#user-create input[name="password"]`), "eve console password"),
		click(`#user-create button`),
		holds(`(document.querySelector('#users tr[data-user="eve"]')||{dataset:{}}).dataset.disabled === "false"`),
		click(`#users tr[data-user="eve"] button.disable`),
		holds(`(document.querySelector('#users tr[data-user="eve"]')||{dataset:{}}).dataset.disabled === "true"`),
		click("#nav-access"),
		chromedp.WaitVisible(chromedp.CSS("#binding-add")),
		chromedp.SetValue(chromedp.CSS(`#binding-add select[name="user"]`), "eve"),
		chromedp.SetValue(chromedp.CSS(`#binding-add select[name="role"]`), "viewer"),
		chromedp.SetValue(chromedp.CSS(`#binding-add input[name="groups"]`), "g1"),
		click(`#binding-add button`),
		holds(`(document.querySelector('#bindings tr[data-user="eve"][data-role="viewer"] .scope')||{}).textContent === "groups g1"`))
	ops.do(t, "trust a domain",
		click("#nav-trust"),
		chromedp.WaitVisible(chromedp.CSS("#trust-add")),
		chromedp.SetValue(chromedp.CSS(`#trust-add input[name="name"]`), "partner"),
		chromedp.SetValue(chromedp.CSS(`#trust-add input[name="public_key"]`), deploy.EncodePublicKey(partnerKey)),
		click(`#trust-add button`),
		holds(fmt.Sprintf(`(document.querySelector('#trusted tr[data-domain="partner"]')||{}).textContent.includes(%q)`, deploy.KeyFingerprint(partnerKey))))
	if n := ops.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened: a script from the domain's data ran", n)
	}

	// A viewer of g1 alone.
	watch := newTab(t, browser)
	watch.do(t, "the viewer opens the console", chromedp.Navigate(d.url+"/ui/"))
	watch.signIn(t, "watch", viewerPassword)
	watch.do(t, "the viewer's overview shows g1 only",
		holds(`!!document.querySelector('#groups tr[data-group="g1"]') && !document.querySelector('#groups tr[data-group="other"]')`),
		chromedp.Navigate(d.url+"/ui/groups/g1"),
		chromedp.WaitVisible(chromedp.CSS("#no-deploy")),
		holds(`!document.querySelector("#deploy") && !document.querySelector("button.rollback")`))
	forge := func(withToken bool) int {
		return eval[int](t, watch, "forge a deploy", fmt.Sprintf(`(async () => {
			const body = new URLSearchParams({message: "forged"});
			if (%t) body.set("csrf", document.querySelector('form.signout input[name="csrf"]').value);
			const r = await fetch("/ui/groups/g1/deploy", {method: "POST", body});
			return r.status; })()`, withToken))
	}
	if code := forge(false); code != http.StatusForbidden {
		t.Errorf("a POST without the CSRF token: %d, want 403", code)
	}
	if code := forge(true); code != http.StatusForbidden {
		t.Errorf("a forged deploy with the viewer's session: %d, want 403", code)
	}
	if n := eval[int](t, watch, "look for the administration links", `document.querySelectorAll("#nav-users, #nav-access, #nav-environments, #nav-trust").length`); n != 0 {
		t.Error("the viewer is offered administration pages")
	}
	if code := eval[int](t, watch, "forge a user creation", `(async () => {
			const body = new URLSearchParams({op: "create", name: "mallory", password: "mallory's long password",
				csrf: document.querySelector('form.signout input[name="csrf"]').value});
			return (await fetch("/ui/admin/users", {method: "POST", body})).status; })()`); code != http.StatusForbidden {
		t.Errorf("a forged user creation with the viewer's session: %d, want 403", code)
	}
	code, _, body := api.do(t, "GET", "/audit?action=user.create&user=watch", "")
	var denied []apitypes.AuditEntry
	if code != http.StatusOK || json.Unmarshal(body, &denied) != nil {
		t.Fatalf("audit: %d %s", code, body)
	}
	if len(denied) != 1 || denied[0].Result != apitypes.AuditDenied || denied[0].Status != http.StatusForbidden {
		t.Errorf("the viewer's user creations in the audit log: %+v, want the forged one, denied", denied)
	}
	code, _, body = api.do(t, "GET", "/audit?action=deployment.create&user=watch", "")
	var entries []apitypes.AuditEntry
	if code != http.StatusOK || json.Unmarshal(body, &entries) != nil {
		t.Fatalf("audit: %d %s", code, body)
	}
	if len(entries) != 1 || entries[0].Result != apitypes.AuditDenied || entries[0].Status != http.StatusForbidden || entries[0].Group != "g1" {
		t.Errorf("the viewer's deploys in the audit log: %+v, want the forged one, denied", entries)
	}
	if n := d.summary(t).CurrentDeployment; n != 4 {
		t.Errorf("g1's current deployment is #%d after the viewer's attempts, want #4", n)
	}

	ops.do(t, "the audit log shows the viewer's refused deploy",
		click("#nav-audit"),
		chromedp.WaitVisible(chromedp.CSS("#audit-filter")),
		chromedp.SetValue(chromedp.CSS(`#audit-filter input[name="user"]`), "watch"),
		click(`#audit-filter button`),
		holds(`location.search.includes("user=watch") && !!document.querySelector('#audit tr[data-action="deployment.create"][data-user="watch"][data-result="denied"]')`))
	ops.do(t, "the audit log by pages of 5",
		chromedp.Navigate(d.url+"/ui/audit?limit=5"),
		holds(`document.querySelectorAll("#audit tr[data-seq]").length === 5`))
	oldest := eval[int](t, ops, "the page's oldest entry", `Math.min(...[...document.querySelectorAll("#audit tr[data-seq]")].map(r => Number(r.dataset.seq)))`)
	ops.do(t, "the older page follows the newest; a time range in the future has no entry",
		click("#audit-older"),
		holds(fmt.Sprintf(`location.search.includes("before=%d") && document.querySelectorAll("#audit tr[data-seq]").length === 5 &&
			[...document.querySelectorAll("#audit tr[data-seq]")].every(r => Number(r.dataset.seq) < %d) && !!document.querySelector("#audit-newest")`, oldest, oldest)),
		chromedp.Navigate(d.url+"/ui/audit?from=2100-01-01T00:00"),
		holds(`document.querySelectorAll("#audit tr[data-seq]").length === 0 && document.querySelector("#audit").textContent.includes("No entry.")`))
	if n := eval[int](t, watch, "look for the audit link", `document.querySelectorAll("#nav-audit").length`); n != 0 {
		t.Error("the viewer is offered the audit log")
	}
	// Traffic: the page's numbers are the requests sent, by route.
	const sentA, sentB = 17, 8
	for i := range sentA + sentB {
		in := "gw-a"
		if i >= sentA {
			in = "gw-b"
		}
		if _, err := d.through(in, fmt.Sprintf("/orders/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ops.do(t, "the traffic page counts the requests sent",
		chromedp.Navigate(d.url+"/ui/groups/g1"),
		click("#traffic-link"),
		holds(fmt.Sprintf(`(document.querySelector('#routes tr[data-route="all"] .requests')||{}).textContent === "%d" &&
			document.querySelector("#totals .requests").textContent === "%d" && document.querySelectorAll("svg polyline").length === 8`, sentA+sentB, sentA+sentB)))
	ops.screenshot(t, "traffic")

	ops.do(t, "sign out", click("#signout"), chromedp.WaitVisible(chromedp.CSS("#login")))
}

// TestConsoleShowsRollingUpgrade: a rolling upgrade of g1 (two gateways)
// from the node managers' own binary to release 9.1.0-a (a build with
// that version string), started from g1's page in a real Chromium (the
// release picked, then confirmed), followed on the open page without a
// reload: rolling, then done with each instance's steps, every instance's
// release and gateway version shown, the version mix moved to 9.1.0-a;
// the upgrade audited as the console user's; the releases page lists the
// release as g1's.
func TestConsoleShowsRollingUpgrade(t *testing.T) {
	browser := startBrowser(t)
	a := buildVersion(t, t.TempDir(), "9.1.0-a")
	up := startUpstream(t, "one", nil)
	d := setUpUpgrade(t, up, "web-1", "web-2")
	d.cli.ok(t, "", "release", "upload", a, "--version", "9.1.0-a")
	_, _, token, _ := d.cli.saved(t)
	api := newAdminAPI(t, d.url, d.caFile, token)
	const opsPassword = "ops console password"
	api.addUser(t, "ops", opsPassword, "domain-admin", `{"domain":true}`)
	before := d.waitLocal(t, "both instances running", d.appliedEverywhere(1))

	ops := newTab(t, browser)
	ops.do(t, "open the console", chromedp.Navigate(d.url+"/ui/"))
	ops.signIn(t, "ops", opsPassword)
	ops.do(t, "g1's page shows the node managers' own binary on both instances",
		holds(`location.pathname === "/ui/" && !!document.querySelector("#groups")`),
		chromedp.Navigate(d.url+"/ui/groups/g1"),
		holds(`(() => { const rel = i => (document.querySelector('#instances tr[data-instance="' + i + '"] .release')||{dataset:{}}).dataset.release;
			return document.querySelector("#release").dataset.version === "" && !document.querySelector("#release-rollout") &&
				rel("web-1") === "" && rel("web-2") === ""; })()`))
	// Started from the page: the release picked, then confirmed.
	ops.do(t, "start the rolling upgrade to 9.1.0-a, confirmed",
		chromedp.SetValue(chromedp.CSS("#upgrade-version"), "9.1.0-a"),
		click("#upgrade"),
		holds(`/from the node manager's own binary to 9\.1\.0-a, 1 at a time\?/.test((document.querySelector("#upgrade-what")||{}).textContent||"")`),
		click("#confirm-upgrade"),
		holds(`(document.querySelector("#done")||{}).textContent === "Rolling upgrade to 9.1.0-a started."`),
		holds(`/Rolling upgrade 1 from the node manager's own binary to 9\.1\.0-a:\s+rolling/.test(document.querySelector("#release-rollout").textContent)`))
	// The page is marked: the rest is seen without a reload.
	eval[bool](t, ops, "mark the page", `(window.consoleTestMark = "upgrade", true)`)
	ops.screenshot(t, "upgrade")
	d.waitLocal(t, "both instances on new processes", func(v map[string]localapi.InstanceView) bool {
		return v["web-1"].Ready && v["web-2"].Ready && v["web-1"].PID != before["web-1"].PID && v["web-2"].PID != before["web-2"].PID
	})
	ops.do(t, "the open page shows the upgrade done, each instance's steps, and each instance on 9.1.0-a, without a reload",
		holds(`(() => { const r = document.querySelector("#release-rollout");
			const rel = i => (document.querySelector('#instances tr[data-instance="' + i + '"] .release')||{dataset:{}}).dataset.release;
			const ver = i => (document.querySelector('#instances tr[data-instance="' + i + '"] .version')||{}).textContent || "";
			const steps = [...document.querySelectorAll('#release-events tr[data-instance]')].map(e => e.dataset.instance + " " + e.querySelector(".what").textContent.split(" ")[0]);
			return window.consoleTestMark === "upgrade" && r && r.dataset.state === "done" &&
				document.querySelector("#release").dataset.version === "9.1.0-a" &&
				r.querySelector(".done-instances").textContent === "web-1, web-2" &&
				["web-1 upgraded", "web-2 upgraded"].every(s => steps.includes(s)) &&
				rel("web-1") === "9.1.0-a" && rel("web-2") === "9.1.0-a" &&
				/^9\.1\.0-a \(level \d+\)$/.test(ver("web-1")) && /^9\.1\.0-a \(level \d+\)$/.test(ver("web-2")) &&
				[...document.querySelectorAll("#versions .version")].map(b => b.dataset.version).join() === "9.1.0-a"; })()`))
	ops.screenshot(t, "upgrade-done")
	ops.do(t, "the releases page lists 9.1.0-a, used by g1",
		click("#nav-releases"),
		holds(`(document.querySelector('#releases tr[data-version="9.1.0-a"] .groups')||{}).textContent === "g1"`))
	var entries []apitypes.AuditEntry
	d.cli.json(t, &entries, "audit", "--group", nmGroup, "--action", "group.gateway.update")
	if len(entries) != 1 || entries[0].User != "ops" || entries[0].Result != apitypes.AuditOK {
		t.Errorf("audit of the upgrade: %+v, want one by ops, ok", entries)
	}
	if n := ops.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}
