package client

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// ListEnvironments lists the domain's environments with their values and
// the names of their secrets.
func (c *Client) ListEnvironments(ctx context.Context) ([]apitypes.Environment, error) {
	var out []apitypes.Environment
	err := c.get(ctx, "/environments", nil, &out)
	return out, err
}

// GetEnvironment returns an environment: its values and the names of its
// secrets.
func (c *Client) GetEnvironment(ctx context.Context, name string) (apitypes.Environment, error) {
	var out apitypes.Environment
	err := c.get(ctx, segments("environments", name), nil, &out)
	return out, err
}

// ReplaceEnvironment creates the environment or replaces all its values.
// With ifMatch other than 0, the environment must still be at that
// version (409 otherwise).
func (c *Client) ReplaceEnvironment(ctx context.Context, name string, values map[string]string, ifMatch uint64) (apitypes.Environment, error) {
	r, err := jsonRequest(http.MethodPut, segments("environments", name), apitypes.EnvironmentValues{Values: values})
	if err != nil {
		return apitypes.Environment{}, err
	}
	if ifMatch != 0 {
		r.ifMatch = etag(ifMatch)
	}
	var out apitypes.Environment
	_, err = c.do(ctx, r, &out)
	return out, err
}

// EditEnvironment sets and unsets values of the environment in one
// change, creating it when missing. Every name of unset must be set (404
// otherwise, and nothing changes).
func (c *Client) EditEnvironment(ctx context.Context, name string, set map[string]string, unset []string) (apitypes.Environment, error) {
	var out apitypes.Environment
	err := c.send(ctx, http.MethodPatch, segments("environments", name), apitypes.EnvironmentEdit{Set: set, Unset: unset}, &out)
	return out, err
}

// SetValue sets one value of the environment, creating it when missing.
func (c *Client) SetValue(ctx context.Context, env, name, value string) (apitypes.Environment, error) {
	var out apitypes.Environment
	err := c.send(ctx, http.MethodPut, segments("environments", env, "values", name), apitypes.SettingValue{Value: value}, &out)
	return out, err
}

// UnsetValue removes one value of the environment.
func (c *Client) UnsetValue(ctx context.Context, env, name string) error {
	return c.send(ctx, http.MethodDelete, segments("environments", env, "values", name), nil, nil)
}

// DeleteEnvironment deletes the environment with its values and secrets.
func (c *Client) DeleteEnvironment(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, segments("environments", name), nil, nil)
}

// ListSecrets describes the secrets of the environment; their values are
// never sent back.
func (c *Client) ListSecrets(ctx context.Context, env string) ([]apitypes.Secret, error) {
	var out []apitypes.Secret
	err := c.get(ctx, segments("environments", env, "secrets"), nil, &out)
	return out, err
}

// SetSecret sets a secret of the environment, creating the environment
// when missing.
func (c *Client) SetSecret(ctx context.Context, env, name, value string) (apitypes.Secret, error) {
	var out apitypes.Secret
	err := c.send(ctx, http.MethodPut, segments("environments", env, "secrets", name), apitypes.SettingValue{Value: value}, &out)
	return out, err
}

// UnsetSecret removes a secret of the environment.
func (c *Client) UnsetSecret(ctx context.Context, env, name string) error {
	return c.send(ctx, http.MethodDelete, segments("environments", env, "secrets", name), nil, nil)
}

// ListTrustedDomains lists the domains whose packages this one accepts.
func (c *Client) ListTrustedDomains(ctx context.Context) ([]apitypes.TrustedDomain, error) {
	var out []apitypes.TrustedDomain
	err := c.get(ctx, "/trusted-domains", nil, &out)
	return out, err
}

// GetTrustedDomain returns a trusted domain.
func (c *Client) GetTrustedDomain(ctx context.Context, name string) (apitypes.TrustedDomain, error) {
	var out apitypes.TrustedDomain
	err := c.get(ctx, segments("trusted-domains", name), nil, &out)
	return out, err
}

// TrustDomain trusts the packages of the domain name signed by publicKey
// ("ed25519:…", as its GET /domain shows it), replacing the key it was
// trusted with, if any.
func (c *Client) TrustDomain(ctx context.Context, name, publicKey string) (apitypes.TrustedDomain, error) {
	var out apitypes.TrustedDomain
	err := c.send(ctx, http.MethodPut, segments("trusted-domains", name), apitypes.TrustRequest{PublicKey: publicKey}, &out)
	return out, err
}

// UntrustDomain stops trusting the domain's packages.
func (c *Client) UntrustDomain(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, segments("trusted-domains", name), nil, nil)
}

// ExportPublishKeys returns the domain's publish keys (a domain admin's
// call, audited).
func (c *Client) ExportPublishKeys(ctx context.Context) (apitypes.PublishKeyExport, error) {
	var out apitypes.PublishKeyExport
	err := c.send(ctx, http.MethodPost, "/publish-key/export", nil, &out)
	return out, err
}

// RotatePublishKey makes a new publish key, keeping the previous one.
func (c *Client) RotatePublishKey(ctx context.Context) (apitypes.PublishKeyRotation, error) {
	var out apitypes.PublishKeyRotation
	err := c.send(ctx, http.MethodPost, "/publish-key/rotate", nil, &out)
	return out, err
}
