package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

const (
	// sessionCookie holds the session's API login token. It is never
	// readable by scripts (HttpOnly) nor shown by a page.
	sessionCookie = "gatehouse_console"
	// loginCookie holds the random value the sign-in form must echo, so
	// that another site cannot sign a browser in to its own account.
	loginCookie = "gatehouse_console_login"
	// csrfField is the form field, and csrfHeader the header of the
	// script's requests, that carry a session's CSRF token.
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// session is a signed-in browser.
type session struct {
	bearer string
	user   string
	csrf   string
}

// csrfToken derives the session's CSRF token from its bearer: another
// site can neither read the cookie nor compute it, and every admin node
// derives the same without storing anything.
func csrfToken(bearer string) string {
	sum := sha256.Sum256([]byte("gatehouse console csrf\x00" + bearer))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	// Secure even under --insecure-http: the browser then sends it only
	// over HTTPS (a TLS-terminating proxy) or to localhost, never in clear
	// text across a network.
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// errStoreAway is a session that could not be checked: the store did
// not answer. The session is kept; the request fails (503).
var errStoreAway = errors.New("the admin node cannot reach its store: try again")

// session returns r's session when its cookie names a login token that
// is live, not idle for longer than the idle timeout. An idle one is
// revoked. The token's secret itself is checked by the API on every call.
// It answers (nil, nil) when nobody is signed in, and errStoreAway when
// the store did not answer.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	id, _, err := auth.ParseBearer(ck.Value)
	if err != nil {
		setCookie(w, sessionCookie, "", -1)
		return nil, nil
	}
	tok, err := c.toks.GetToken(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		setCookie(w, sessionCookie, "", -1)
		return nil, nil
	case err != nil:
		c.log.Warn("read a console session's token", "token", id, "error", err)
		return nil, errStoreAway
	}
	last := tok.CreatedAt
	if tok.LastUsedAt.After(last) {
		last = tok.LastUsedAt
	}
	now := c.now()
	switch {
	case tok.Kind != store.TokenKindLogin, tok.Revoked, !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt):
		setCookie(w, sessionCookie, "", -1)
		return nil, nil
	case now.Sub(last) > c.idle:
		if err := c.call(r, ck.Value, http.MethodPost, "/auth/logout", nil, nil); err != nil {
			c.log.Warn("end an idle console session", "token", id, "error", err)
		}
		setCookie(w, sessionCookie, "", -1)
		return nil, nil
	}
	return &session{bearer: ck.Value, user: tok.User, csrf: csrfToken(ck.Value)}, nil
}

// signedIn runs h for a signed-in caller, whose state-changing requests
// carry the session's CSRF token; others go to the sign-in page.
func (c *Console) signedIn(h func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(w, r)
		if err != nil {
			w.Header().Set("Retry-After", "1")
			c.fail(w, r, nil, http.StatusServiceUnavailable, err.Error())
			return
		}
		if s == nil {
			if r.Method != http.MethodGet {
				c.fail(w, r, nil, http.StatusUnauthorized, "Your session has ended: sign in again.")
				return
			}
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet {
			got := r.Header.Get(csrfHeader)
			if got == "" {
				got = r.PostFormValue(csrfField)
			}
			if !sameSecret(got, s.csrf) {
				c.log.Warn("console request refused: missing or wrong CSRF token", "user", s.user, "path", r.URL.Path, "source", r.RemoteAddr)
				c.fail(w, r, s, http.StatusForbidden, "This form is out of date or did not come from the console: reload the page and try again.")
				return
			}
		}
		h(w, r, s)
	}
}

type loginView struct {
	CSRF  string
	User  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if s, err := c.session(w, r); err == nil && s != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, loginView{})
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) {
	var b [24]byte
	rand.Read(b[:])
	v.CSRF = base64.RawURLEncoding.EncodeToString(b[:])
	setCookie(w, loginCookie, v.CSRF, 600)
	c.render(w, r, status, "login", page{Title: "Sign in", Data: v})
}

// login signs in through the API's login: the same password check, rate
// limit and audit entry as `gatehouse login`.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	user, password := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password")
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameSecret(r.PostFormValue(csrfField), ck.Value) {
		c.showLogin(w, r, http.StatusForbidden, loginView{User: user, Error: "The sign-in form expired: try again."})
		return
	}
	var out apitypes.LoginResponse
	err = c.call(r, "", http.MethodPost, "/auth/login", apitypes.LoginRequest{User: user, Password: password}, &out)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.status < 500:
		c.showLogin(w, r, ae.status, loginView{User: user, Error: ae.body.Message})
		return
	case err != nil:
		c.fail(w, r, nil, http.StatusInternalServerError, "Sign-in failed: the admin node could not answer.")
		c.log.Error("console sign-in", "user", user, "error", err)
		return
	}
	setCookie(w, loginCookie, "", -1)
	setCookie(w, sessionCookie, out.Token, 0)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.call(r, s.bearer, http.MethodPost, "/auth/logout", nil, nil); err != nil {
		c.log.Warn("console sign-out", "user", s.user, "error", err)
	}
	setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
