package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// Latest names a group's current deployment where a deployment number is
// expected.
const Latest = "latest"

// Deploy freezes and signs the group's draft as its next deployment.
func (c *Client) Deploy(ctx context.Context, group string, req apitypes.DeployRequest) (apitypes.Deployment, error) {
	var out apitypes.Deployment
	err := c.send(ctx, http.MethodPost, segments("groups", group, "deployments"), req, &out)
	return out, err
}

// ListDeployments lists the group's deployments, without their
// configurations.
func (c *Client) ListDeployments(ctx context.Context, group string) ([]apitypes.Deployment, error) {
	var out []apitypes.Deployment
	err := c.get(ctx, segments("groups", group, "deployments"), nil, &out)
	return out, err
}

// GetDeployment returns a deployment with its configuration; number is a
// deployment number or Latest.
func (c *Client) GetDeployment(ctx context.Context, group, number string) (apitypes.Deployment, error) {
	var out apitypes.Deployment
	err := c.get(ctx, segments("groups", group, "deployments", number), nil, &out)
	return out, err
}

// Diff compares two deployments of the group, each a number or Latest.
func (c *Client) Diff(ctx context.Context, group, from, to string) (apitypes.Diff, error) {
	var out apitypes.Diff
	err := c.get(ctx, segments("groups", group, "deployments", from, "diff", to), nil, &out)
	return out, err
}

// Rollback deploys the configuration of an earlier deployment again, as a
// new deployment, and sets the group's draft to it.
func (c *Client) Rollback(ctx context.Context, group string, number uint64, message string) (apitypes.Deployment, error) {
	return c.RollbackWith(ctx, group, number, apitypes.RollbackRequest{Message: message})
}

// RollbackWith is Rollback with every option of the request (keep_draft).
func (c *Client) RollbackWith(ctx context.Context, group string, number uint64, req apitypes.RollbackRequest) (apitypes.Deployment, error) {
	path := segments("groups", group, "deployments", strconv.FormatUint(number, 10), "rollback")
	var out apitypes.Deployment
	err := c.send(ctx, http.MethodPost, path, req, &out)
	return out, err
}

// IsNothingToDeploy reports whether err is the admin node's answer to
// deploying a draft identical to the current deployment.
func IsNothingToDeploy(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Detail.Code == apitypes.CodeNothingToDeploy
}

// Rollout returns where deployment number (or Latest) of the group is in
// its roll-out: at once when index is nil, else when its index differs
// from *index or after wait (a blocking query). The client's Timeout must
// be longer than wait.
func (c *Client) Rollout(ctx context.Context, group, number string, index *uint64, wait time.Duration) (apitypes.Rollout, error) {
	var out apitypes.Rollout
	err := c.get(ctx, segments("groups", group, "deployments", number, "rollout"), blocking(index, wait), &out)
	return out, err
}

// ExportPackage returns the package file (.ghpkg) of a deployment of the
// group, a number or Latest, byte for byte.
func (c *Client) ExportPackage(ctx context.Context, group, number string) ([]byte, error) {
	var out []byte
	err := c.get(ctx, segments("groups", group, "deployments", number, "package"), nil, &out)
	return out, err
}

// Import opens package pkg in the group's domain, resolves it with
// environment env ("" for the group's own) and answers the diff against
// the group's current deployment; unless dryRun, it deploys it.
func (c *Client) Import(ctx context.Context, group string, pkg []byte, env string, dryRun bool) (apitypes.Import, error) {
	var out apitypes.Import
	q := url.Values{"dry_run": {strconv.FormatBool(dryRun)}}
	if env != "" {
		q.Set("env", env)
	}
	r := request{method: http.MethodPost, path: segments("groups", group, "import"), query: q, body: pkg, contentType: "application/json"}
	_, err := c.do(ctx, r, &out)
	return out, err
}
