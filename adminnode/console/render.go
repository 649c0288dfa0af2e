package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// page is what the layout shows around a page's own part.
type page struct {
	Title string
	// Nav is the menu entry that is current.
	Nav  string
	User string
	CSRF string
	// Live is the URL the script polls for the page's live part; ""
	// for a page without one.
	Live  string
	Error string
	// Audit, Users, Environments, Trust and Releases offer those pages
	// to users who may read what they show.
	Audit, Users, Environments, Trust, Releases bool
	Data                                        any
}

// pageTime is how the pages show a time.
const pageTime = "2006-01-02 15:04:05 UTC"

// templateFuncs are the templates' helpers. None returns template.HTML:
// whatever comes from the domain is escaped.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"labels": func(m map[string]string) string {
			keys := slices.Sorted(maps.Keys(m))
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = k + "=" + m[k]
			}
			return strings.Join(parts, ", ")
		},
		"ago": func(now, t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return now.Sub(t).Round(time.Second).String() + " ago"
		},
		"percent": func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(pageTime)
		},
		// value shows a field of a diff as JSON, absent as "—".
		"value": func(v any) string {
			if v == nil {
				return "—"
			}
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Sprint(v)
			}
			return string(b)
		},
		"mib":  func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) },
		"prev": func(n uint64) uint64 { return n - 1 },
		"ratio": func(r *float64) string {
			if r == nil {
				return "—"
			}
			return fmt.Sprintf("%.2f%%", *r*100)
		},
		"ms": func(v *float64) string {
			if v == nil {
				return "—"
			}
			// The API's quantiles are in seconds.
			return fmt.Sprintf("%.1f ms", *v*1000)
		},
		// rolloutState words a roll-out's state as the page says it.
		"rolloutState": func(s string) string {
			if s == apitypes.RolloutInProgress {
				return "in progress"
			}
			return s
		},
		"rolloutClass": func(s string) string {
			switch s {
			case apitypes.RolloutComplete:
				return "ok"
			case apitypes.RolloutFailed:
				return "error"
			}
			return "warn"
		},
		"release": releaseName,
		"upgradeClass": func(s string) string {
			switch s {
			case store.RolloutDone:
				return "ok"
			case store.RolloutRolledBack:
				return "error"
			}
			return "warn"
		},
		"scope": func(sc apitypes.Scope) string {
			switch {
			case sc.Domain:
				return "domain"
			case len(sc.Groups) > 0:
				return "groups " + strings.Join(sc.Groups, ", ")
			}
			keys := slices.Sorted(maps.Keys(sc.Selector))
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = k + "=" + sc.Selector[k]
			}
			return "groups labelled " + strings.Join(parts, ", ")
		},
		"statusClass": func(s string) string {
			return "st-" + strings.ToLower(strings.ReplaceAll(s, " ", "-"))
		},
	}
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.User != "" {
		authz, err := c.authz.Authorizer(r.Context(), p.User)
		if err == nil {
			p.Audit = authz.Allowed(rbac.AuditRead, nil)
			p.Users = authz.Allowed(rbac.UserRead, nil)
			p.Environments = authz.Allowed(rbac.EnvironmentRead, nil)
			p.Trust = authz.Allowed(rbac.TrustRead, nil)
			p.Releases = authz.Allowed(rbac.HostRead, nil)
		}
	}
	var b bytes.Buffer
	if err := c.pages[name].Execute(&b, p); err != nil {
		c.log.Error("render console page", "page", name, "path", r.URL.Path, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// fail shows an error page; s is nil when nobody is signed in.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	p := page{Title: http.StatusText(status), Error: msg}
	if s != nil {
		p.User, p.CSRF = s.user, s.csrf
	}
	c.render(w, r, status, "error", p)
}

// failAPI shows the API's refusal with its status, or a generic message
// for the console's own failures (logged).
func (c *Console) failAPI(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.status == http.StatusUnauthorized {
			setCookie(w, sessionCookie, "", -1)
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		c.fail(w, r, s, ae.status, ae.body.Message)
		return
	}
	c.log.Error("console page", "path", r.URL.Path, "error", err)
	c.fail(w, r, s, http.StatusInternalServerError, "The admin node could not answer: see its log.")
}

// liveAnswer is the body of a page's live endpoint: its live part,
// rendered (and escaped) by the same template as the page.
type liveAnswer struct {
	Time time.Time `json:"time"`
	HTML string    `json:"html"`
}

// live serves the live part of a page as JSON for the page's script.
func (c *Console) live(data func(r *http.Request, s *session) (page, error), name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(w, r)
		switch {
		case err != nil:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"store unreachable"}`))
			return
		case s == nil:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"signed out"}`))
			return
		}
		p, err := data(r, s)
		var ae *apiError
		if err != nil {
			status := http.StatusInternalServerError
			if errors.As(err, &ae) {
				status = ae.status
			} else {
				c.log.Error("console live data", "path", r.URL.Path, "error", err)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": http.StatusText(status)})
			return
		}
		var b bytes.Buffer
		if err := c.pages[name].ExecuteTemplate(&b, "live", p); err != nil {
			c.log.Error("render console live part", "page", name, "error", err)
			http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
			return
		}
		// The validator is the part's markup alone: the answer's time
		// changes every second, what it shows does not.
		if notModified(w, r, etagOf(b.Bytes())) {
			return
		}
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		// The markup is escaped already, and JSON served with nosniff is
		// never read as HTML: \u003c for every "<" would only add bytes.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(liveAnswer{Time: c.now().UTC(), HTML: b.String()}); err != nil {
			c.log.Error("encode console live part", "page", name, "error", err)
			http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
			return
		}
		writeBody(w, r, "application/json", out.Bytes(), nil)
	}
}

// show renders a page from its data function.
func (c *Console) show(w http.ResponseWriter, r *http.Request, s *session, name string, data func(r *http.Request, s *session) (page, error)) {
	p, err := data(r, s)
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, name, p)
}
