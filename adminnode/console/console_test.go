package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

const password = "correct horse battery"

// clock is a settable time for idle expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	// srv and other are two admin nodes of the domain.
	srv, other *httptest.Server
	store      *store.Bolt
	clock      *clock
}

// newFixture serves the real API and the console over TLS, on a store
// with the users "admin" (domain-admin) and "viewer" (viewer of group
// "shown" only), and groups "shown" and "hidden".
func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
	check(err)
	t.Cleanup(func() { st.Close() })
	pub, key, err := deploy.GenerateSigningKey()
	check(err)
	dom := store.Domain{Name: "test", SigningPublicKey: pub}
	check(st.InitDomain(ctx, dom))
	for _, r := range rbac.BuiltInRoles() {
		_, err := st.CreateRole(ctx, r)
		check(err)
	}
	hash, err := auth.HashPassword(password, bcrypt.MinCost)
	check(err)
	for _, u := range []string{"admin", "viewer"} {
		_, err = st.CreateUser(ctx, store.User{Name: u, PasswordHash: hash})
		check(err)
	}
	_, err = st.CreateRoleBinding(ctx, store.RoleBinding{User: "admin", Role: rbac.RoleDomainAdmin, Scope: store.Scope{Domain: true}})
	check(err)
	_, err = st.CreateRoleBinding(ctx, store.RoleBinding{User: "viewer", Role: rbac.RoleViewer, Scope: store.Scope{Groups: []string{"shown"}}})
	check(err)
	for _, g := range []store.Group{
		{Name: "shown", Labels: map[string]string{"env": "prod"}, Description: "<img src=x onerror=alert(1)>"},
		{Name: "hidden", Labels: map[string]string{"env": "dev"}},
	} {
		_, err = st.CreateGroup(ctx, g)
		check(err)
	}
	root, err := ca.New("test", time.Now())
	check(err)
	settingsKey, err := seal.Parse(seal.NewKeyFile())
	check(err)
	clk := &clock{t: time.Now()}
	// Two admin nodes on one store, as several on one PostgreSQL.
	node := func() *httptest.Server {
		srv, err := api.New(api.Config{Store: st, Domain: dom, SigningKey: key, SettingsKey: settingsKey,
			CA: root, CAFingerprint: root.Fingerprint(), PasswordCost: bcrypt.MinCost, Now: clk.now})
		check(err)
		ui, err := New(Config{API: srv.Handler(), Authorizers: srv, Tokens: st, Now: clk.now})
		check(err)
		hs := httptest.NewTLSServer(ui.Handler())
		t.Cleanup(hs.Close)
		return hs
	}
	return &fixture{srv: node(), other: node(), store: st, clock: clk}
}

// browser is a client with its own cookies that does not follow
// redirects, so that each answer is seen.
func (f *fixture) browser(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *f.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func do(t testing.TB, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in:\n%s", page)
	}
	return m[1]
}

// signIn signs user in and returns the CSRF token of its session.
func (f *fixture) signIn(t testing.TB, c *http.Client, user, pw string) (*http.Response, string) {
	t.Helper()
	_, page := do(t, c, "GET", f.srv.URL+"/ui/login", nil)
	return do(t, c, "POST", f.srv.URL+"/ui/login", url.Values{"user": {user}, "password": {pw}, "csrf": {csrfOf(t, page)}})
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	for _, path := range []string{"/ui/login", "/ui/", "/ui/static/console.js", "/ui/static/console.css", "/ui/static/", "/ui/nowhere", "/ui/live/overview"} {
		resp, body := do(t, c, "GET", f.srv.URL+path, nil)
		if path == "/ui/static/" && (resp.StatusCode != http.StatusNotFound || strings.Contains(body, `href="console.js"`)) {
			t.Errorf("%s lists the directory: %d\n%s", path, resp.StatusCode, body)
		}
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") ||
			strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
}

func TestSignInSessionAndSignOut(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)

	resp, page := f.signIn(t, c, "admin", "wrong password")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "invalid user or password") {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = f.signIn(t, c, "admin", password)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in: %d %v", resp.StatusCode, resp.Header)
	}
	var cookie string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, sessionCookie+"=") {
			cookie = v
		}
	}
	for _, want := range []string{"HttpOnly", "Secure", "SameSite=Strict", "Path=/ui/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	// The session is a login token, stored hashed; the page never shows it.
	toks, err := f.store.ListTokens(context.Background(), "admin")
	if err != nil || len(toks) != 1 || toks[0].Kind != store.TokenKindLogin {
		t.Fatalf("tokens %+v, %v", toks, err)
	}
	value := strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], sessionCookie+"=")
	resp, page = do(t, c, "GET", f.srv.URL+"/ui/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-group="shown"`) || !strings.Contains(page, `data-group="hidden"`) {
		t.Fatalf("overview: %d\n%s", resp.StatusCode, page)
	}
	if strings.Contains(page, value) {
		t.Error("the overview shows the session's token")
	}
	// Sign-in went through the API: audited as its login.
	entries, err := f.store.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ok, denied int
	for _, e := range entries {
		if e.Action == "auth.login" && e.User == "admin" {
			switch e.Result {
			case store.AuditOK:
				ok++
			case store.AuditDenied:
				denied++
			}
		}
	}
	if ok != 1 || denied != 1 {
		t.Errorf("audit of sign-ins: %d ok, %d denied, want 1 and 1", ok, denied)
	}

	// Sign-out needs the CSRF token, and revokes the token.
	if resp, _ := do(t, c, "POST", f.srv.URL+"/ui/logout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without CSRF token: %d", resp.StatusCode)
	}
	resp, _ = do(t, c, "POST", f.srv.URL+"/ui/logout", url.Values{"csrf": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	toks, _ = f.store.ListTokens(context.Background(), "admin")
	if len(toks) != 1 || !toks[0].Revoked {
		t.Errorf("token after sign-out %+v", toks)
	}
	if resp, _ := do(t, c, "GET", f.srv.URL+"/ui/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("overview after sign-out: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestSignInFormNeedsItsToken(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	resp, page := do(t, c, "POST", f.srv.URL+"/ui/login", url.Values{"user": {"admin"}, "password": {password}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "expired") {
		t.Errorf("sign-in without the form's token: %d\n%s", resp.StatusCode, page)
	}
}

func TestIdleSessionEnds(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c, "admin", password)
	f.clock.add(DefaultIdleTimeout - time.Minute)
	if resp, _ := do(t, c, "GET", f.srv.URL+"/ui/topology", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("topology within the idle timeout: %d", resp.StatusCode)
	}
	// That use was recorded (at most once a minute), so the session lives
	// on from it.
	f.clock.add(DefaultIdleTimeout - time.Minute)
	if resp, _ := do(t, c, "GET", f.srv.URL+"/ui/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("overview after a use: %d", resp.StatusCode)
	}
	f.clock.add(DefaultIdleTimeout + time.Second)
	resp, _ := do(t, c, "GET", f.srv.URL+"/ui/", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("overview after idling: %d %v", resp.StatusCode, resp.Header)
	}
	toks, _ := f.store.ListTokens(context.Background(), "admin")
	if len(toks) != 1 || !toks[0].Revoked {
		t.Errorf("idle session's token %+v", toks)
	}
	if resp, body := do(t, c, "GET", f.srv.URL+"/ui/live/overview", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("live part after idling: %d %s", resp.StatusCode, body)
	}
}

func TestViewerSeesItsGroupOnlyAndCannotDeploy(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c, "viewer", password)
	_, page := do(t, c, "GET", f.srv.URL+"/ui/", nil)
	if !strings.Contains(page, `data-group="shown"`) || strings.Contains(page, `data-group="hidden"`) {
		t.Errorf("viewer's overview:\n%s", page)
	}
	resp, page := do(t, c, "GET", f.srv.URL+"/ui/groups/shown", nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(page, `id="deploy"`) || !strings.Contains(page, `id="no-deploy"`) {
		t.Errorf("viewer's group page: %d\n%s", resp.StatusCode, page)
	}
	// Escaped, never markup.
	if strings.Contains(page, "<img src=x") || !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("group description not shown as text:\n%s", page)
	}
	if resp, _ := do(t, c, "GET", f.srv.URL+"/ui/groups/hidden", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer's page of another group: %d", resp.StatusCode)
	}
	tests := []struct {
		name string
		form url.Values
		want int
	}{
		{"no CSRF token", url.Values{"message": {"x"}}, http.StatusForbidden},
		{"wrong CSRF token", url.Values{"message": {"x"}, "csrf": {"AAAA"}}, http.StatusForbidden},
		{"forged with the session's token", url.Values{"message": {"x"}, "csrf": {csrfOf(t, page)}}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, c, "POST", f.srv.URL+"/ui/groups/shown/deploy", tt.form)
			if resp.StatusCode != tt.want {
				t.Errorf("%d, want %d\n%s", resp.StatusCode, tt.want, body)
			}
		})
	}
	// Only the forged request reached the API, which refused and audited it.
	entries, err := f.store.ListAudit(context.Background(), store.AuditFilter{Action: "deployment.create"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].User != "viewer" || entries[0].Result != store.AuditDenied || entries[0].Status != http.StatusForbidden {
		t.Errorf("audit of deploys %+v", entries)
	}

	// The draft: the viewer may read and validate it, not save it.
	resp, page = do(t, c, "GET", f.srv.URL+"/ui/groups/shown/draft", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="validate"`) || strings.Contains(page, `id="save-draft"`) {
		t.Errorf("the viewer's draft editor: %d\n%s", resp.StatusCode, page)
	}
	resp, page = do(t, c, "POST", f.srv.URL+"/ui/groups/shown/draft", url.Values{"csrf": {csrfOf(t, page)}, "op": {"validate"},
		"config": {"services:\n  - name: s\n    upstream: nowhere\n"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-field="services[0].upstream"`) {
		t.Errorf("the viewer's validation: %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := do(t, c, "POST", f.srv.URL+"/ui/groups/shown/draft", url.Values{"csrf": {csrfOf(t, page)}, "op": {"save"},
		"version": {"1"}, "config": {"services: []\n"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the viewer's save of the draft: %d", resp.StatusCode)
	}

	// The audit log: not offered to the viewer (no audit:read), refused
	// if asked for; shown to an admin, filtered.
	_, page = do(t, c, "GET", f.srv.URL+"/ui/", nil)
	if strings.Contains(page, `id="nav-audit"`) {
		t.Error("the viewer is offered the audit log")
	}
	if resp, _ := do(t, c, "GET", f.srv.URL+"/ui/audit", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the viewer's audit page: %d", resp.StatusCode)
	}
	admin := f.browser(t)
	f.signIn(t, admin, "admin", password)
	resp, page = do(t, admin, "GET", f.srv.URL+"/ui/audit?action=deployment.create", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="nav-audit"`) ||
		!strings.Contains(page, `<tr data-action="deployment.create" data-user="viewer" data-result="denied" data-seq=`) || strings.Contains(page, `data-action="auth.login"`) {
		t.Errorf("the admin's audit page: %d\n%s", resp.StatusCode, page)
	}
}

func TestLiveEndpointAnswersThePagePart(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c, "admin", password)
	resp, body := do(t, c, "GET", f.srv.URL+"/ui/live/overview?selector=env%3Ddev", nil)
	var a liveAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil {
		t.Fatalf("live overview: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(a.HTML, `data-group="hidden"`) || strings.Contains(a.HTML, `data-group="shown"`) {
		t.Errorf("live overview with selector env=dev:\n%s", a.HTML)
	}
}

func TestSignInIsRateLimitedAsTheAPILogin(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	// The API's limiter lets 5 failures pass, then makes the pair
	// (user, address) wait; the fixture's clock stands still.
	for i := range 5 {
		if resp, page := f.signIn(t, c, "admin", "wrong password"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d\n%s", i+1, resp.StatusCode, page)
		}
	}
	resp, page := f.signIn(t, c, "admin", password)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "too many failed attempts") {
		t.Errorf("the right password after 5 failures: %d\n%s", resp.StatusCode, page)
	}
}

func TestSessionHoldsOnEveryAdminNode(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	resp, _ := f.signIn(t, c, "admin", password)
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	// The other admin node knows the session from the store alone, and
	// derives the same CSRF token.
	other := *f.srv.Client()
	other.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", f.other.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session.Value})
		resp, err := other.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, page := get("/ui/groups/shown")
	if code != http.StatusOK || !strings.Contains(page, `id="deploy"`) {
		t.Fatalf("the session on the other admin node: %d\n%s", code, page)
	}
	_, here := do(t, c, "GET", f.srv.URL+"/ui/groups/shown", nil)
	if csrfOf(t, page) != csrfOf(t, here) {
		t.Error("the admin nodes derive different CSRF tokens for one session")
	}
	// Signed out on one, signed out on both.
	do(t, c, "POST", f.srv.URL+"/ui/logout", url.Values{"csrf": {csrfOf(t, here)}})
	if code, _ := get("/ui/groups/shown"); code != http.StatusSeeOther {
		t.Errorf("the other admin node after sign-out: %d", code)
	}
}

type awayTokens struct{}

func (awayTokens) GetToken(context.Context, string) (store.Token, error) {
	return store.Token{}, errors.New("connection refused")
}

type noAuthorizers struct{}

func (noAuthorizers) Authorizer(context.Context, string) (*rbac.Authorizer, error) {
	return nil, errors.New("not called")
}

// A session that cannot be checked, the store away, is kept: the request
// fails (503) and the browser keeps its cookie for when the store is back.
func TestStoreAwayKeepsTheSession(t *testing.T) {
	ui, err := New(Config{API: http.NotFoundHandler(), Authorizers: noAuthorizers{}, Tokens: awayTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/ui/", "/ui/live/overview"} {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok.Bearer})
		w := httptest.NewRecorder()
		ui.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Set-Cookie") != "" {
			t.Errorf("%s: %d, Set-Cookie %q", path, w.Code, w.Header().Get("Set-Cookie"))
		}
	}
}

// The overview lists what needs attention as the API does, escaped,
// within the label filter.
func TestOverviewNeedsAttention(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.CreateHost(ctx, store.Host{Name: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateInstance(ctx, store.Instance{Name: "gw-1", Group: "hidden", Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	c := f.browser(t)
	f.signIn(t, c, "admin", password)
	_, page := do(t, c, "GET", f.srv.URL+"/ui/", nil)
	if !strings.Contains(page, `data-kind="pending" data-instance="gw-1"`) || !strings.Contains(page, `<tr data-host="h1"><td>h1</td><td>1</td><td>never</td>`) {
		t.Errorf("overview without a heartbeat from gw-1:\n%s", page)
	}
	// The version mix of the group and of the host: gw-1's gateway has not
	// said its version yet.
	if n := strings.Count(page, `<span class="badge version" data-version="" title="gw-1">not reported ×1</span>`); n != 2 {
		t.Errorf("overview shows gw-1's unreported version %d times, want 2 (group and host):\n%s", n, page)
	}
	_, page = do(t, c, "GET", f.srv.URL+"/ui/?selector=env%3Dprod", nil)
	if strings.Contains(page, `data-instance="gw-1"`) {
		t.Errorf("overview filtered to env=prod shows gw-1 of env=dev:\n%s", page)
	}
}

// The overview lists the certificates the domain depends on that the
// user may see: the CA root to an admin, nothing to a viewer without
// host:read whose group has no deployment.
func TestOverviewCertificates(t *testing.T) {
	f := newFixture(t)
	admin := f.browser(t)
	f.signIn(t, admin, "admin", password)
	_, page := do(t, admin, "GET", f.srv.URL+"/ui/", nil)
	if !strings.Contains(page, `id="certificates"`) || !strings.Contains(page, `<tr data-kind="ca" data-state="ok"><td>ca (issuer,server)</td>`) {
		t.Errorf("the admin's overview lacks the CA root:\n%s", page)
	}
	viewer := f.browser(t)
	f.signIn(t, viewer, "viewer", password)
	if _, page := do(t, viewer, "GET", f.srv.URL+"/ui/", nil); strings.Contains(page, `id="certificates"`) {
		t.Errorf("the viewer's overview shows certificates:\n%s", page)
	}
}
