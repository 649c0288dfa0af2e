package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Prefix is where the console is served.
const Prefix = "/ui/"

// DefaultIdleTimeout ends a session nobody used for that long.
const DefaultIdleTimeout = 30 * time.Minute

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Authorizers gives the permissions of a user, as the API computes them
// (api.Server).
type Authorizers interface {
	Authorizer(ctx context.Context, user string) (*rbac.Authorizer, error)
}

// Tokens reads the stored record of a token (store.Store).
type Tokens interface {
	GetToken(ctx context.Context, id string) (store.Token, error)
}

// Config is what New needs.
type Config struct {
	// API is the admin API's handler, which every page calls in process.
	API         http.Handler
	Authorizers Authorizers
	Tokens      Tokens
	Logger      hclog.Logger
	// IdleTimeout ends a session after that long without a request;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	Now         func() time.Time
}

// Console serves the web console.
type Console struct {
	api   http.Handler
	authz Authorizers
	toks  Tokens
	log   hclog.Logger
	idle  time.Duration
	now   func() time.Time
	pages map[string]*template.Template
	// static are the console's files by name, read once.
	static map[string]staticFile
	mux    *http.ServeMux
}

// New checks cfg and builds the console.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.API == nil:
		return nil, errors.New("new console: no API handler")
	case cfg.Authorizers == nil:
		return nil, errors.New("new console: no authorizers")
	case cfg.Tokens == nil:
		return nil, errors.New("new console: no token store")
	case cfg.IdleTimeout < 0:
		return nil, fmt.Errorf("new console: idle timeout %s: must be positive", cfg.IdleTimeout)
	}
	c := &Console{api: cfg.API, authz: cfg.Authorizers, toks: cfg.Tokens, log: cfg.Logger,
		idle: cfg.IdleTimeout, now: cfg.Now, pages: map[string]*template.Template{}}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if c.idle == 0 {
		c.idle = DefaultIdleTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	for _, page := range []string{"login", "overview", "topology", "group", "diff", "traffic", "draft", "audit", "confirm", "error",
		"users", "access", "environments", "trust", "releases", "upgrade", "instance", "fleet", "import"} {
		t, err := template.New("layout.html").Funcs(templateFuncs()).ParseFS(templateFS,
			"templates/layout.html", "templates/changes.html", "templates/settings.html", "templates/fleetparts.html", "templates/instanceparts.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("new console: template %s: %w", page, err)
		}
		c.pages[page] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("new console: %w", err)
	}
	if c.static, err = loadStatic(static); err != nil {
		return nil, fmt.Errorf("new console: %w", err)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/static/", c.serveStatic)
	m.HandleFunc("GET /ui/login", c.loginPage)
	m.HandleFunc("POST /ui/login", c.login)
	m.HandleFunc("POST /ui/logout", c.signedIn(c.logout))
	m.HandleFunc("GET /ui/{$}", c.signedIn(c.overview))
	m.HandleFunc("GET /ui/live/overview", c.live(c.overviewData, "overview"))
	m.HandleFunc("GET /ui/topology", c.signedIn(c.topology))
	m.HandleFunc("GET /ui/live/topology", c.live(c.topologyData, "topology"))
	m.HandleFunc("GET /ui/audit", c.signedIn(c.audit))
	m.HandleFunc("GET /ui/admin/users", c.signedIn(c.users))
	m.HandleFunc("POST /ui/admin/users", c.signedIn(c.userAction))
	m.HandleFunc("GET /ui/admin/access", c.signedIn(c.access))
	m.HandleFunc("POST /ui/admin/bindings", c.signedIn(c.bindingAction))
	m.HandleFunc("POST /ui/admin/roles", c.signedIn(c.roleAction))
	m.HandleFunc("GET /ui/admin/environments", c.signedIn(c.environments))
	m.HandleFunc("POST /ui/admin/environments", c.signedIn(c.environmentAction))
	m.HandleFunc("GET /ui/admin/trust", c.signedIn(c.trust))
	m.HandleFunc("POST /ui/admin/trust", c.signedIn(c.trustAction))
	m.HandleFunc("GET /ui/admin/releases", c.signedIn(c.releases))
	m.HandleFunc("POST /ui/admin/releases", c.streamedForm(maxReleaseBytes+1<<20, c.uploadRelease))
	m.HandleFunc("POST /ui/admin/releases/delete", c.signedIn(c.deleteRelease))
	m.HandleFunc("GET /ui/groups/{group}/deployments/{number}/package", c.signedIn(c.exportPackage))
	m.HandleFunc("GET /ui/groups/{group}/import", c.signedIn(c.importForm))
	m.HandleFunc("POST /ui/groups/{group}/import", c.streamedForm(maxPackageBytes+1<<20, c.importDryRun))
	m.HandleFunc("POST /ui/groups/{group}/import/confirm", limitBody(maxConfirmBytes, c.signedIn(c.importPackage)))
	m.HandleFunc("GET /ui/groups/{group}", c.signedIn(c.group))
	m.HandleFunc("GET /ui/live/groups/{group}", c.live(c.groupLive, "group"))
	m.HandleFunc("GET /ui/groups/{group}/diff", c.signedIn(c.diff))
	m.HandleFunc("GET /ui/groups/{group}/traffic", c.signedIn(c.traffic))
	m.HandleFunc("GET /ui/groups/{group}/draft", c.signedIn(c.draft))
	m.HandleFunc("POST /ui/groups/{group}/draft", c.signedIn(c.saveDraft))
	m.HandleFunc("GET /ui/live/groups/{group}/traffic", c.live(c.trafficData, "traffic"))
	m.HandleFunc("POST /ui/groups/{group}/deploy", c.signedIn(c.deploy))
	m.HandleFunc("POST /ui/groups/{group}/rollback", c.signedIn(c.rollback))
	m.HandleFunc("POST /ui/groups/{group}/upgrade", c.signedIn(c.upgrade))
	c.settingsRoutes(m)
	m.HandleFunc("GET /ui/new-group", c.signedIn(c.newGroupForm))
	m.HandleFunc("POST /ui/new-group", c.signedIn(c.createGroup))
	m.HandleFunc("POST /ui/groups/{group}/edit", c.signedIn(c.updateGroup))
	m.HandleFunc("POST /ui/groups/{group}/gossip-key", c.signedIn(c.rotateGossipKey))
	m.HandleFunc("POST /ui/groups/{group}/delete", c.signedIn(c.deleteGroup))
	m.HandleFunc("GET /ui/groups/{group}/new-instance", c.signedIn(c.newInstanceForm))
	m.HandleFunc("POST /ui/groups/{group}/instances", c.signedIn(c.createInstance))
	m.HandleFunc("POST /ui/instances/{instance}/restart", c.signedIn(c.restartInstance))
	m.HandleFunc("POST /ui/instances/{instance}/delete", c.signedIn(c.deleteInstance))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusNotFound, "No such page.")
	})
	c.mux = m
	return c, nil
}

// Handler serves the console under Prefix, each answer with the
// console's security headers.
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Scripts and styles come from the console's own files only: no
		// inline script, style or event handler runs, whatever a page
		// shows.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		c.mux.ServeHTTP(w, r)
	})
}
