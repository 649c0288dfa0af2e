package client

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// Certificates lists the lifetimes of the certificates the domain
// depends on that the caller may see.
func (c *Client) Certificates(ctx context.Context) ([]apitypes.CertificateExpiry, error) {
	var out []apitypes.CertificateExpiry
	err := c.get(ctx, "/certificates", nil, &out)
	return out, err
}

// CAStatus describes the domain CA's roots.
func (c *Client) CAStatus(ctx context.Context) (apitypes.CAStatus, error) {
	var out apitypes.CAStatus
	err := c.get(ctx, "/ca", nil, &out)
	return out, err
}

// RotateCA adds a new root that issues node certificates from now on.
func (c *Client) RotateCA(ctx context.Context) (apitypes.CAStatus, error) {
	var out apitypes.CAStatus
	err := c.send(ctx, http.MethodPost, "/ca/rotate", nil, &out)
	return out, err
}

// RetireCA stops trusting the previous root.
func (c *Client) RetireCA(ctx context.Context, in apitypes.CARetire) (apitypes.CAStatus, error) {
	var out apitypes.CAStatus
	err := c.send(ctx, http.MethodPost, "/ca/retire", in, &out)
	return out, err
}
