package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// AllUsers, as the user of ListTokens, lists every user's tokens.
const AllUsers = "*"

// Health asks whether the admin node is up; it needs no token.
func (c *Client) Health(ctx context.Context) (apitypes.Health, error) {
	var h apitypes.Health
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/health", anonymous: true}, &h)
	return h, err
}

// Domain describes the domain: its CA fingerprint and signing key.
func (c *Client) Domain(ctx context.Context) (apitypes.Domain, error) {
	var d apitypes.Domain
	err := c.get(ctx, "/domain", nil, &d)
	return d, err
}

// OpenAPI returns the API's OpenAPI 3 description.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	err := c.get(ctx, "/openapi.json", nil, &doc)
	return doc, err
}

// Login exchanges a user's password for a login token. The client's own
// token is not sent; Login does not change it either.
func (c *Client) Login(ctx context.Context, user, password string) (apitypes.LoginResponse, error) {
	r, err := jsonRequest(http.MethodPost, "/auth/login", apitypes.LoginRequest{User: user, Password: password})
	if err != nil {
		return apitypes.LoginResponse{}, err
	}
	r.anonymous = true
	var out apitypes.LoginResponse
	_, err = c.do(ctx, r, &out)
	return out, err
}

// Logout revokes the client's token.
func (c *Client) Logout(ctx context.Context) error {
	return c.send(ctx, http.MethodPost, "/auth/logout", nil, nil)
}

// WhoAmI says who the token belongs to and what it may do.
func (c *Client) WhoAmI(ctx context.Context) (apitypes.WhoAmI, error) {
	var w apitypes.WhoAmI
	err := c.get(ctx, "/auth/whoami", nil, &w)
	return w, err
}

// ChangePassword changes the caller's own password.
func (c *Client) ChangePassword(ctx context.Context, current, next string) error {
	return c.send(ctx, http.MethodPut, "/auth/password", apitypes.PasswordChange{Current: current, New: next}, nil)
}

// ListTokens lists the tokens of user: the caller's when empty, everyone's
// with AllUsers.
func (c *Client) ListTokens(ctx context.Context, user string) ([]apitypes.Token, error) {
	var q url.Values
	if user != "" {
		q = url.Values{"user": {user}}
	}
	var out []apitypes.Token
	err := c.get(ctx, "/tokens", q, &out)
	return out, err
}

// CreateToken creates an API token; its secret is in the answer only.
func (c *Client) CreateToken(ctx context.Context, t apitypes.TokenCreate) (apitypes.TokenCreated, error) {
	var out apitypes.TokenCreated
	err := c.send(ctx, http.MethodPost, "/tokens", t, &out)
	return out, err
}

// RevokeToken revokes the token with the ID.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.send(ctx, http.MethodDelete, segments("tokens", id), nil, nil)
}

// CreateJoinToken makes a single-use, expiring token for a node manager to
// join the domain as a host.
func (c *Client) CreateJoinToken(ctx context.Context, t apitypes.JoinTokenCreate) (apitypes.JoinTokenCreated, error) {
	var out apitypes.JoinTokenCreated
	err := c.send(ctx, http.MethodPost, "/join-tokens", t, &out)
	return out, err
}

// ListJoinTokens lists the join tokens, used and unused.
func (c *Client) ListJoinTokens(ctx context.Context) ([]apitypes.JoinToken, error) {
	var out []apitypes.JoinToken
	err := c.send(ctx, http.MethodGet, "/join-tokens", nil, &out)
	return out, err
}
