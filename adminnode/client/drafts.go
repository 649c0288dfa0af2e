package client

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
)

// Kinds of draft resources, the {kind} of /groups/{group}/draft/{kind}.
// Routes and global policies have routes of their own.
const (
	KindServices     = "services"
	KindUpstreams    = "upstreams"
	KindConsumers    = "consumers"
	KindCertificates = "certificates"
)

// GetDraft returns the group's draft. Its Version is what PutDraft's
// ifMatch must be.
func (c *Client) GetDraft(ctx context.Context, group string) (apitypes.Draft, error) {
	var d apitypes.Draft
	h, err := c.do(ctx, request{method: http.MethodGet, path: segments("groups", group, "draft")}, &d)
	if err != nil {
		return d, err
	}
	if d.Version == 0 {
		d.Version = versionOf(h)
	}
	return d, nil
}

// PutDraft replaces the group's draft with body, a configuration in YAML
// ("application/yaml") or JSON ("application/json"), as it was written:
// the admin node decodes it, so that its field errors have the lines of
// the file. ifMatch is the version the draft was read at (0 for a group
// that never had one); another edit since then makes it fail with 409.
func (c *Client) PutDraft(ctx context.Context, group string, body []byte, contentType string, ifMatch uint64) (apitypes.Draft, error) {
	r := request{
		method:      http.MethodPut,
		path:        segments("groups", group, "draft"),
		body:        body,
		contentType: contentType,
		ifMatch:     etag(ifMatch),
	}
	var d apitypes.Draft
	h, err := c.do(ctx, r, &d)
	if err != nil {
		return d, err
	}
	if d.Version == 0 {
		d.Group, d.Version = group, versionOf(h)
	}
	return d, nil
}

// ValidateDraft validates body, a configuration in YAML or JSON as for
// PutDraft, against the group without storing it; with a nil body, the
// stored draft.
func (c *Client) ValidateDraft(ctx context.Context, group string, body []byte, contentType string) (apitypes.Validation, error) {
	r := request{method: http.MethodPost, path: segments("groups", group, "draft", "validate")}
	if body != nil {
		r.body, r.contentType = body, contentType
	}
	var v apitypes.Validation
	_, err := c.do(ctx, r, &v)
	return v, err
}

// DraftDiff compares the group's current deployment with its draft.
func (c *Client) DraftDiff(ctx context.Context, group string) (apitypes.Diff, error) {
	var d apitypes.Diff
	err := c.get(ctx, segments("groups", group, "draft", "diff"), nil, &d)
	return d, err
}

// ListDraftResources returns the draft's resources of a kind (a Kind
// constant) as the JSON list the admin node sent, to decode into a slice
// of the deploy type of the kind.
func (c *Client) ListDraftResources(ctx context.Context, group, kind string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.get(ctx, segments("groups", group, "draft", kind), nil, &out)
	return out, err
}

// GetDraftResource returns one resource of the draft as JSON.
func (c *Client) GetDraftResource(ctx context.Context, group, kind, name string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.get(ctx, segments("groups", group, "draft", kind, name), nil, &out)
	return out, err
}

// CreateDraftResource adds resource, a value of the deploy type of the
// kind (deploy.Service for KindServices), to the draft.
func (c *Client) CreateDraftResource(ctx context.Context, group, kind string, resource any) error {
	return c.send(ctx, http.MethodPost, segments("groups", group, "draft", kind), resource, nil)
}

// PutDraftResource replaces the draft's resource of the kind named name.
func (c *Client) PutDraftResource(ctx context.Context, group, kind, name string, resource any) error {
	return c.send(ctx, http.MethodPut, segments("groups", group, "draft", kind, name), resource, nil)
}

// DeleteDraftResource removes a resource from the draft.
func (c *Client) DeleteDraftResource(ctx context.Context, group, kind, name string) error {
	return c.send(ctx, http.MethodDelete, segments("groups", group, "draft", kind, name), nil, nil)
}

// ListDraftRoutes returns the routes of a service of the draft.
func (c *Client) ListDraftRoutes(ctx context.Context, group, service string) ([]deploy.Route, error) {
	var out []deploy.Route
	err := c.get(ctx, segments("groups", group, "draft", KindServices, service, "routes"), nil, &out)
	return out, err
}

// GetDraftRoute returns a route of a service of the draft.
func (c *Client) GetDraftRoute(ctx context.Context, group, service, route string) (deploy.Route, error) {
	var out deploy.Route
	err := c.get(ctx, segments("groups", group, "draft", KindServices, service, "routes", route), nil, &out)
	return out, err
}

// CreateDraftRoute adds a route to a service of the draft.
func (c *Client) CreateDraftRoute(ctx context.Context, group, service string, route deploy.Route) error {
	return c.send(ctx, http.MethodPost, segments("groups", group, "draft", KindServices, service, "routes"), route, nil)
}

// PutDraftRoute replaces the route named name of a service of the draft.
func (c *Client) PutDraftRoute(ctx context.Context, group, service, name string, route deploy.Route) error {
	return c.send(ctx, http.MethodPut, segments("groups", group, "draft", KindServices, service, "routes", name), route, nil)
}

// DeleteDraftRoute removes a route from a service of the draft.
func (c *Client) DeleteDraftRoute(ctx context.Context, group, service, route string) error {
	return c.send(ctx, http.MethodDelete, segments("groups", group, "draft", KindServices, service, "routes", route), nil, nil)
}

// GlobalPolicies returns the draft's global policies, in order.
func (c *Client) GlobalPolicies(ctx context.Context, group string) ([]deploy.Policy, error) {
	var out []deploy.Policy
	err := c.get(ctx, segments("groups", group, "draft", "global-policies"), nil, &out)
	return out, err
}

// PutGlobalPolicies replaces the draft's global policies with policies,
// whose order is the order they apply in.
func (c *Client) PutGlobalPolicies(ctx context.Context, group string, policies []deploy.Policy) error {
	if policies == nil {
		// An empty list, not null: removing every policy is meant.
		policies = []deploy.Policy{}
	}
	return c.send(ctx, http.MethodPut, segments("groups", group, "draft", "global-policies"), policies, nil)
}
