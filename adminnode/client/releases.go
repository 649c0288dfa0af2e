package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// UploadRelease stores binary as the gateway release version.
func (c *Client) UploadRelease(ctx context.Context, version string, binary []byte) (apitypes.Release, error) {
	var out apitypes.Release
	r := request{method: http.MethodPost, path: "/releases", query: url.Values{"version": {version}},
		body: binary, contentType: "application/octet-stream"}
	_, err := c.do(ctx, r, &out)
	return out, err
}

// ListReleases lists the gateway releases.
func (c *Client) ListReleases(ctx context.Context) ([]apitypes.Release, error) {
	var out []apitypes.Release
	err := c.get(ctx, "/releases", nil, &out)
	return out, err
}

// DeleteRelease deletes a release no group needs.
func (c *Client) DeleteRelease(ctx context.Context, version string) error {
	return c.send(ctx, http.MethodDelete, segments("releases", version), nil, nil)
}

// GroupGateway returns a group's gateway release and its rollouts.
func (c *Client) GroupGateway(ctx context.Context, group string) (apitypes.GroupGateway, error) {
	var out apitypes.GroupGateway
	err := c.get(ctx, segments("groups", group, "gateway"), nil, &out)
	return out, err
}

// SetGroupGateway starts the rolling upgrade of a group to a release.
func (c *Client) SetGroupGateway(ctx context.Context, group string, in apitypes.GroupGatewayUpdate) (apitypes.GroupGateway, error) {
	var out apitypes.GroupGateway
	err := c.send(ctx, http.MethodPut, segments("groups", group, "gateway"), in, &out)
	return out, err
}

// AgentRelease downloads a release's binary over the agent API and gives
// it to consume with the SHA-256 the admin node announces.
func (c *Client) AgentRelease(ctx context.Context, version string, consume func(sha256Hex string, body io.Reader) error) error {
	r := request{method: http.MethodGet, path: segments("releases", version), agent: true, anonymous: true}
	_, err := c.do(ctx, r, bodyConsumer(func(h http.Header, body io.Reader) error {
		sum := h.Get(apitypes.HeaderReleaseSHA256)
		if sum == "" {
			return fmt.Errorf("release %s: the answer has no %s", version, apitypes.HeaderReleaseSHA256)
		}
		return consume(sum, body)
	}))
	return err
}
