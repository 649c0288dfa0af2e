package client

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// GroupSettings returns the dynamic settings of the group's gateways.
func (c *Client) GroupSettings(ctx context.Context, group string) (apitypes.GatewaySettings, error) {
	var out apitypes.GatewaySettings
	err := c.get(ctx, segments("groups", group, "settings"), nil, &out)
	return out, err
}

// SetGroupSettings replaces the dynamic settings of the group's gateways;
// empty settings clear them.
func (c *Client) SetGroupSettings(ctx context.Context, group string, s apitypes.GatewaySettings) (apitypes.GatewaySettings, error) {
	var out apitypes.GatewaySettings
	err := c.send(ctx, http.MethodPut, segments("groups", group, "settings"), s, &out)
	return out, err
}

// InstanceSettings returns an instance's dynamic settings: its group's,
// its own, the merged ones and those its gateway reports.
func (c *Client) InstanceSettings(ctx context.Context, instance string) (apitypes.InstanceSettings, error) {
	var out apitypes.InstanceSettings
	err := c.get(ctx, segments("instances", instance, "settings"), nil, &out)
	return out, err
}

// SetInstanceSettings replaces an instance's own dynamic settings; empty
// settings clear them.
func (c *Client) SetInstanceSettings(ctx context.Context, instance string, s apitypes.GatewaySettings) (apitypes.InstanceSettings, error) {
	var out apitypes.InstanceSettings
	err := c.send(ctx, http.MethodPut, segments("instances", instance, "settings"), s, &out)
	return out, err
}
