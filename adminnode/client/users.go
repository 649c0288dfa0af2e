package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// ListUsers lists the users.
func (c *Client) ListUsers(ctx context.Context) ([]apitypes.User, error) {
	var out []apitypes.User
	err := c.get(ctx, "/users", nil, &out)
	return out, err
}

// CreateUser creates a user with a password.
func (c *Client) CreateUser(ctx context.Context, u apitypes.UserCreate) (apitypes.User, error) {
	var out apitypes.User
	err := c.send(ctx, http.MethodPost, "/users", u, &out)
	return out, err
}

// GetUser returns the user.
func (c *Client) GetUser(ctx context.Context, name string) (apitypes.User, error) {
	var out apitypes.User
	err := c.get(ctx, segments("users", name), nil, &out)
	return out, err
}

// UpdateUser sets another user's password or disables the user, which
// revokes its tokens; nil fields of u are left as they are.
func (c *Client) UpdateUser(ctx context.Context, name string, u apitypes.UserUpdate) (apitypes.User, error) {
	var out apitypes.User
	err := c.send(ctx, http.MethodPatch, segments("users", name), u, &out)
	return out, err
}

// DeleteUser deletes the user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, segments("users", name), nil, nil)
}

// ListRoles lists the roles, built-in ones included.
func (c *Client) ListRoles(ctx context.Context) ([]apitypes.Role, error) {
	var out []apitypes.Role
	err := c.get(ctx, "/roles", nil, &out)
	return out, err
}

// GetRole returns the role.
func (c *Client) GetRole(ctx context.Context, name string) (apitypes.Role, error) {
	var out apitypes.Role
	err := c.get(ctx, segments("roles", name), nil, &out)
	return out, err
}

// CreateRole creates a role.
func (c *Client) CreateRole(ctx context.Context, r apitypes.Role) (apitypes.Role, error) {
	var out apitypes.Role
	err := c.send(ctx, http.MethodPost, "/roles", r, &out)
	return out, err
}

// UpdateRole replaces the permissions and description of the role r.Name.
func (c *Client) UpdateRole(ctx context.Context, r apitypes.Role) (apitypes.Role, error) {
	var out apitypes.Role
	err := c.send(ctx, http.MethodPut, segments("roles", r.Name), r, &out)
	return out, err
}

// DeleteRole deletes a role that no binding uses.
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, segments("roles", name), nil, nil)
}

// ListBindings lists the role bindings of user, or all when empty.
func (c *Client) ListBindings(ctx context.Context, user string) ([]apitypes.RoleBinding, error) {
	var q url.Values
	if user != "" {
		q = url.Values{"user": {user}}
	}
	var out []apitypes.RoleBinding
	err := c.get(ctx, "/bindings", q, &out)
	return out, err
}

// CreateBinding grants b.Role to b.User within b.Scope; the answer has the
// binding's ID.
func (c *Client) CreateBinding(ctx context.Context, b apitypes.RoleBinding) (apitypes.RoleBinding, error) {
	var out apitypes.RoleBinding
	err := c.send(ctx, http.MethodPost, "/bindings", b, &out)
	return out, err
}

// DeleteBinding deletes the role binding with the ID.
func (c *Client) DeleteBinding(ctx context.Context, id string) error {
	return c.send(ctx, http.MethodDelete, segments("bindings", id), nil, nil)
}
