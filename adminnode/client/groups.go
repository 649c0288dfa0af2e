package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// ListGroups lists the groups the caller may read whose labels match
// selector ("env=prod,team=a"); an empty selector matches all.
func (c *Client) ListGroups(ctx context.Context, selector string) ([]apitypes.Group, error) {
	var q url.Values
	if selector != "" {
		q = url.Values{"selector": {selector}}
	}
	var out []apitypes.Group
	err := c.get(ctx, "/groups", q, &out)
	return out, err
}

// CreateGroup creates g.
func (c *Client) CreateGroup(ctx context.Context, g apitypes.Group) (apitypes.Group, error) {
	var out apitypes.Group
	err := c.send(ctx, http.MethodPost, "/groups", g, &out)
	return out, err
}

// GetGroup returns the group.
func (c *Client) GetGroup(ctx context.Context, name string) (apitypes.Group, error) {
	var out apitypes.Group
	err := c.get(ctx, segments("groups", name), nil, &out)
	return out, err
}

// UpdateGroup replaces the labels and description of the group g.Name.
// With ifMatch other than 0, the group must still be at that version (409
// otherwise), so that a read-modify-write does not undo another's edit.
func (c *Client) UpdateGroup(ctx context.Context, g apitypes.Group, ifMatch uint64) (apitypes.Group, error) {
	r, err := jsonRequest(http.MethodPut, segments("groups", g.Name), g)
	if err != nil {
		return apitypes.Group{}, err
	}
	if ifMatch != 0 {
		r.ifMatch = etag(ifMatch)
	}
	var out apitypes.Group
	_, err = c.do(ctx, r, &out)
	return out, err
}

// DeleteGroup deletes the group.
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, segments("groups", name), nil, nil)
}

// GroupSummary says how far the group's current deployment has rolled out.
func (c *Client) GroupSummary(ctx context.Context, name string) (apitypes.GroupSummary, error) {
	var out apitypes.GroupSummary
	err := c.get(ctx, segments("groups", name, "summary"), nil, &out)
	return out, err
}

// GroupInstances lists the instances of a group.
func (c *Client) GroupInstances(ctx context.Context, group string) ([]apitypes.Instance, error) {
	var out []apitypes.Instance
	err := c.get(ctx, segments("groups", group, "instances"), nil, &out)
	return out, err
}

// ListHosts lists the hosts.
func (c *Client) ListHosts(ctx context.Context) ([]apitypes.Host, error) {
	var out []apitypes.Host
	err := c.get(ctx, "/hosts", nil, &out)
	return out, err
}

// CreateHost creates h.
func (c *Client) CreateHost(ctx context.Context, h apitypes.Host) (apitypes.Host, error) {
	var out apitypes.Host
	err := c.send(ctx, http.MethodPost, "/hosts", h, &out)
	return out, err
}

// GetHost returns the host.
func (c *Client) GetHost(ctx context.Context, name string) (apitypes.Host, error) {
	var out apitypes.Host
	err := c.get(ctx, segments("hosts", name), nil, &out)
	return out, err
}

// DeleteHost deletes the host.
func (c *Client) DeleteHost(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, segments("hosts", name), nil, nil)
}

// InstanceFilter selects instances; empty fields match all.
type InstanceFilter struct {
	Group  string
	Host   string
	Status string
}

func (f InstanceFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"group": f.Group, "host": f.Host, "status": f.Status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// ListInstances lists the instances the caller may read that f selects.
func (c *Client) ListInstances(ctx context.Context, f InstanceFilter) ([]apitypes.Instance, error) {
	var out []apitypes.Instance
	err := c.get(ctx, "/instances", f.query(), &out)
	return out, err
}

// CreateInstance creates the desired state of an instance.
func (c *Client) CreateInstance(ctx context.Context, i apitypes.Instance) (apitypes.Instance, error) {
	var out apitypes.Instance
	err := c.send(ctx, http.MethodPost, "/instances", i, &out)
	return out, err
}

// GetInstance returns an instance with its status.
func (c *Client) GetInstance(ctx context.Context, name string) (apitypes.Instance, error) {
	var out apitypes.Instance
	err := c.get(ctx, segments("instances", name), nil, &out)
	return out, err
}

// UpdateInstance replaces the desired state of the instance i.Name.
func (c *Client) UpdateInstance(ctx context.Context, i apitypes.Instance) (apitypes.Instance, error) {
	var out apitypes.Instance
	err := c.send(ctx, http.MethodPut, segments("instances", i.Name), i, &out)
	return out, err
}

// RestartInstance asks the instance's node manager, through the admin
// node, to restart its gateway; the answer says what to wait on.
func (c *Client) RestartInstance(ctx context.Context, name string) (apitypes.InstanceRestart, error) {
	var out apitypes.InstanceRestart
	err := c.send(ctx, http.MethodPost, segments("instances", name, "restart"), nil, &out)
	return out, err
}

// DeleteInstance deletes the instance.
func (c *Client) DeleteInstance(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, segments("instances", name), nil, nil)
}

// Overview returns the domain on one screen, as far as the caller may see
// it: groups, hosts and what needs attention.
func (c *Client) Overview(ctx context.Context) (apitypes.Overview, error) {
	var out apitypes.Overview
	err := c.get(ctx, "/overview", nil, &out)
	return out, err
}
