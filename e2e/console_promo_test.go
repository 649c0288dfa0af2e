package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleReleasesAndImport drives the console in a real Chromium: a
// gateway release uploaded from the releases page and deleted, confirmed;
// then a package of another domain imported into a group: refused while
// that domain is not trusted, then, trusted, a dry run showing what was
// verified and the diff, confirmed, deployed with the environment picked
// and its roll-out shown.
func TestConsoleReleasesAndImport(t *testing.T) {
	browser := startBrowser(t)
	tr := &transcript{}
	dev := newPromoteDomain(t, tr, "dev")
	prod := newPromoteDomain(t, tr, "prod")
	work := t.TempDir()
	draft, pkg := filepath.Join(work, "draft.yaml"), filepath.Join(work, "payments-1.ghpkg")
	if err := os.WriteFile(draft, []byte("upstreams:\n  - name: orders\n    targets:\n      - address: ${UPSTREAM}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dev.cli.ok(t, "", "env", "set", "dev", "UPSTREAM=127.0.0.1:9001")
	dev.cli.ok(t, "", "group", "create", "payments")
	dev.cli.ok(t, "", "group", "update", "payments", "--environment", "dev")
	dev.cli.ok(t, "", "config", "apply", "-f", draft, "--group", "payments")
	dev.cli.ok(t, "", "deploy", "--group", "payments", "-m", "v1")
	dev.cli.ok(t, "", "export", "--group", "payments", "--deployment", "1", "-o", pkg)
	prod.cli.ok(t, "", "env", "set", "prod", "UPSTREAM=127.0.0.1:9002")
	prod.cli.ok(t, "", "group", "create", "payments")
	const opsPassword = "ops console password"
	prod.api.addUser(t, "ops", opsPassword, "domain-admin", `{"domain":true}`)
	bin := buildVersion(t, work, "9.2.0-c")

	ops := newTab(t, browser)
	ops.do(t, "open the console", chromedp.Navigate(prod.url+"/ui/"))
	ops.signIn(t, "ops", opsPassword)
	ops.do(t, "upload release 9.2.0-c",
		holds(`location.pathname === "/ui/"`),
		click("#nav-releases"),
		chromedp.WaitVisible(chromedp.CSS("#upload-form")),
		chromedp.SetValue(chromedp.CSS("#release-version"), "9.2.0-c"),
		chromedp.SetUploadFiles(chromedp.CSS("#release-file"), []string{bin}),
		click("#upload"),
		holds(`(document.querySelector("#done")||{}).textContent === "Release 9.2.0-c uploaded." &&
			(document.querySelector('#releases tr[data-version="9.2.0-c"] .groups')||{}).textContent === "no group"`))
	ops.do(t, "delete it, confirmed",
		click(`#releases tr[data-version="9.2.0-c"] button.delete`),
		holds(`/^Delete release 9\.2\.0-c\?/.test((document.querySelector("#delete-what")||{}).textContent||"")`),
		click("#confirm-delete"),
		holds(`(document.querySelector("#done")||{}).textContent === "Release 9.2.0-c deleted." && !document.querySelector('#releases tr[data-version="9.2.0-c"]')`))

	dryRun := []chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(chromedp.CSS("#import-form")),
		chromedp.SetValue(chromedp.CSS("#import-env"), "prod"),
		chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{pkg}),
		click("#import-dry-run"),
	}
	ops.do(t, "import dev's package before trusting dev: refused",
		append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(prod.url + "/ui/groups/payments"), click("#import-link")},
			append(dryRun, holds(`/package refused: .*not trusted: "dev"/.test((document.querySelector("#error")||{}).textContent||"")`))...)...)
	prod.cli.ok(t, "", "trust", "add", "dev", "--key", strings.TrimSpace(dev.cli.ok(t, "", "domain", "key")))
	ops.do(t, "trusted: the dry run shows what was verified and the diff",
		append(dryRun, holds(`(() => { const c = (document.querySelector("#import-checks")||{}).textContent||"";
			return c.includes("valid: signed by domain dev, the package is as exported from its group payments, deployment #1.") &&
				c.includes("dev is trusted") && c.includes("environment prod") &&
				[...document.querySelectorAll("#import-diff tr.op-added")].some(r => r.textContent.includes("orders")); })()`))...)
	ops.screenshot(t, "import")
	ops.do(t, "confirmed: deployed, its roll-out shown",
		click("#confirm-import"),
		holds(`location.pathname === "/ui/groups/payments" && (document.querySelector("#done")||{}).textContent === "Deployed #1." &&
			(document.querySelector("#rollout")||{dataset:{}}).dataset.state === "complete" &&
			(document.querySelector('#deployments tr[data-number="1"]')||{textContent:""}).textContent.includes("promoted from dev payments #1")`))
	dep, _ := prod.deployment(t, "payments", "1")
	if dep.Source == nil || dep.Source.Domain != "dev" || dep.Author != "ops" || dep.Config.Upstreams[0].Targets[0].Address != "127.0.0.1:9002" {
		t.Errorf("prod's deployment: source %+v, author %s, upstreams %+v; want dev's by ops with prod's upstream", dep.Source, dep.Author, dep.Config.Upstreams)
	}
	if n := ops.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}
