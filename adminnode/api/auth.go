package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

func (s *Server) health(q *request) (any, error) {
	return apitypes.Health{Status: "ok", Domain: s.domain.Name}, nil
}

func (s *Server) getDomain(q *request) (any, error) {
	return apitypes.Domain{
		Name:                  s.domain.Name,
		CreatedAt:             s.domain.CreatedAt,
		CAFingerprint:         s.caFingerprint(),
		SigningKey:            encodePublicKey(s.domain.SigningPublicKey),
		SigningKeyFingerprint: keyFingerprint(s.domain.SigningPublicKey),
	}, nil
}

func (s *Server) login(q *request) (any, error) {
	var in apitypes.LoginRequest
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	if in.User == "" {
		return nil, badRequest("user", "user is required")
	}
	q.auditUser, q.auditTarget = in.User, "user/"+in.User
	now := s.now()
	if err := s.loginAllowed(q, in.User, now); err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(q.ctx, in.User)
	switch {
	case errors.Is(err, store.ErrNotFound):
		auth.CheckUnknownUser(in.Password)
	case err != nil:
		return nil, err
	}
	if err != nil || !auth.CheckPassword(u.PasswordHash, in.Password) || u.Disabled {
		s.loginFailed(q, in.User, now)
		return nil, unauthorized("invalid user or password")
	}
	s.loginAttempts.Succeeded(in.User, q.source)
	tok, err := s.newToken(q, u.Name, store.TokenKindLogin, "login", now.Add(s.loginTTL))
	if err != nil {
		return nil, err
	}
	return apitypes.LoginResponse{User: u.Name, Token: tok.Secret, ExpiresAt: tok.ExpiresAt.UTC()}, nil
}

// loginAllowed answers 429 with Retry-After when user may not try a
// password from the request's source yet. The source is the TCP peer: the
// admin node trusts no proxy header, which a client could set to anything.
func (s *Server) loginAllowed(q *request, user string, now time.Time) error {
	ok, wait := s.loginAttempts.Allowed(user, q.source, now)
	if ok {
		return nil
	}
	q.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	return newError(http.StatusTooManyRequests, apitypes.CodeTooManyRequests, "too many failed attempts: retry in %s", wait.Round(time.Second))
}

// loginFailed records a wrong password and tells the operator when the
// failures for user, over all sources, reach the level of an attack.
func (s *Server) loginFailed(q *request, user string, now time.Time) {
	if s.loginAttempts.Failed(user, q.source, now) {
		s.log.Warn("many failed logins for one user from many addresses: each address that fails now waits the longest delay after every failure",
			"user", user, "source", q.source)
	}
}

// newToken mints a token and stores its hash.
func (s *Server) newToken(q *request, user, kind, name string, expires time.Time) (apitypes.TokenCreated, error) {
	t, err := auth.NewToken()
	if err != nil {
		return apitypes.TokenCreated{}, err
	}
	stored, err := s.store.CreateToken(q.ctx, store.Token{
		ID: t.ID, User: user, Name: name, Kind: kind,
		SecretHash: auth.HashSecret(t.Secret), ExpiresAt: expires,
	})
	if err != nil {
		return apitypes.TokenCreated{}, err
	}
	q.auditDetail = "token " + t.ID
	return apitypes.TokenCreated{Token: tokenOut(stored), Secret: t.Bearer}, nil
}

func tokenKind(t store.Token) string {
	if t.Kind == store.TokenKindLogin {
		return apitypes.TokenKindLogin
	}
	return apitypes.TokenKindAPI
}

func tokenOut(t store.Token) apitypes.Token {
	out := apitypes.Token{ID: t.ID, User: t.User, Name: t.Name, Kind: tokenKind(t), CreatedAt: t.CreatedAt, Revoked: t.Revoked}
	if !t.ExpiresAt.IsZero() {
		at := t.ExpiresAt
		out.ExpiresAt = &at
	}
	if !t.LastUsedAt.IsZero() {
		at := t.LastUsedAt
		out.LastUsedAt = &at
	}
	return out
}

func (s *Server) logout(q *request) (any, error) {
	q.auditTarget = "token/" + q.who.tokenID
	return nil, s.store.RevokeToken(q.ctx, q.who.tokenID)
}

func (s *Server) whoami(q *request) (any, error) {
	bindings, err := s.store.ListRoleBindings(q.ctx, q.who.user)
	if err != nil {
		return nil, err
	}
	out := apitypes.WhoAmI{
		User:        q.who.user,
		TokenID:     q.who.tokenID,
		Permissions: q.who.authz.Permissions(nil),
		Bindings:    make([]apitypes.RoleBinding, len(bindings)),
	}
	if !q.who.expires.IsZero() {
		at := q.who.expires
		out.ExpiresAt = &at
	}
	for i, b := range bindings {
		out.Bindings[i] = bindingOut(b)
	}
	return out, nil
}

func (s *Server) changePassword(q *request) (any, error) {
	var in apitypes.PasswordChange
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget = "user/" + q.who.user
	now := s.now()
	if err := s.loginAllowed(q, q.who.user, now); err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(q.ctx, q.who.user)
	if err != nil {
		return nil, err
	}
	if !auth.CheckPassword(u.PasswordHash, in.Current) {
		s.loginFailed(q, q.who.user, now)
		return nil, newError(http.StatusForbidden, apitypes.CodeForbidden, "current password is wrong").withField("current")
	}
	if err := auth.ValidatePassword(in.New); err != nil {
		return nil, badRequest("new", "%v", err)
	}
	if u.PasswordHash, err = auth.HashPassword(in.New, s.cost); err != nil {
		return nil, err
	}
	_, err = s.store.UpdateUser(q.ctx, u)
	return nil, err
}

func (s *Server) listTokens(q *request) (any, error) {
	user := q.r.URL.Query().Get("user")
	if user == "" {
		user = q.who.user
	}
	switch {
	case user == q.who.user:
		if err := q.need(rbac.TokenSelf, nil); err != nil {
			return nil, err
		}
	case !q.allowed(rbac.UserAdmin, nil):
		return nil, forbidden(rbac.UserAdmin)
	case user == "*":
		user = ""
	}
	toks, err := s.store.ListTokens(q.ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Token, len(toks))
	for i, t := range toks {
		out[i] = tokenOut(t)
	}
	return out, nil
}

func (s *Server) createToken(q *request) (any, error) {
	var in apitypes.TokenCreate
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	if in.User == "" {
		in.User = q.who.user
	}
	perm := rbac.TokenSelf
	if in.User != q.who.user {
		perm = rbac.UserAdmin
	}
	if err := q.need(perm, nil); err != nil {
		return nil, err
	}
	var expires time.Time
	if in.TTL != "" {
		ttl, err := time.ParseDuration(in.TTL)
		if err != nil || ttl <= 0 {
			return nil, badRequest("ttl", "ttl must be a positive duration such as 720h, not %q", in.TTL)
		}
		expires = s.now().Add(ttl)
	}
	q.auditTarget = "user/" + in.User
	return s.newToken(q, in.User, "", in.Name, expires)
}

func (s *Server) revokeToken(q *request) (any, error) {
	id := q.vars["id"]
	q.auditTarget = "token/" + id
	admin := q.allowed(rbac.UserAdmin, nil)
	t, err := s.store.GetToken(q.ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound) && !admin:
		return nil, forbidden(rbac.UserAdmin)
	case err != nil:
		return nil, err
	case t.User == q.who.user:
		if err := q.need(rbac.TokenSelf, nil); err != nil {
			return nil, err
		}
	case !admin:
		return nil, forbidden(rbac.UserAdmin)
	}
	return nil, s.store.RevokeToken(q.ctx, id)
}
