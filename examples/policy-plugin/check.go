package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/gatehouse/gatehouse/policy/external/sdk"
)

// Config is the policy's config value.
type Config struct {
	// Secret is the HMAC key the clients sign with.
	Secret string `json:"secret"`
	// Header carries the signature; X-Signature by default.
	Header string `json:"header"`
	// Body has the signature cover the request body too; the policy must
	// then send it (body.max_bytes).
	Body bool `json:"body"`
}

// Validate refuses a configuration without a secret.
func (c *Config) Validate() error {
	if c.Secret == "" {
		return errors.New("secret is required")
	}
	return nil
}

func (c *Config) header() string {
	if c.Header == "" {
		return "X-Signature"
	}
	return c.Header
}

// check lets a request through when its signature header holds the hex
// HMAC-SHA256 of what Sign covers. The upstream receives the request
// without the signature and with X-Signature-Verified: true.
func check(_ context.Context, r *sdk.Request, cfg *Config) (*sdk.Verdict, error) {
	name := cfg.header()
	sig := r.Header(name)
	if sig == "" {
		return sdk.Reject(401, "missing "+name+" header"), nil
	}
	if cfg.Body && !r.BodyIncluded {
		return nil, errors.New("config body is true, but the policy does not send the body: set its body.max_bytes")
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return sdk.Reject(401, name+" must be a hex HMAC-SHA256"), nil
	}
	var body []byte
	if cfg.Body {
		body = r.Body
	}
	if !hmac.Equal(got, Sign([]byte(cfg.Secret), r.Method, r.Path, r.Query, body)) {
		return sdk.Reject(401, "invalid signature"), nil
	}
	return sdk.Continue().
		RemoveRequestHeader(name).
		SetRequestHeader("X-Signature-Verified", "true"), nil
}

// Sign is the HMAC-SHA256, under secret, of
//
//	METHOD "\n" PATH ["?" QUERY] "\n" BODY
//
// where PATH is the request's path as the gateway matched it (unescaped),
// the query is there when the request has one, and BODY is empty unless
// the configuration signs bodies.
func Sign(secret []byte, method, path, query string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(method))
	m.Write([]byte("\n"))
	m.Write([]byte(path))
	if query != "" {
		m.Write([]byte("?"))
		m.Write([]byte(query))
	}
	m.Write([]byte("\n"))
	m.Write(body)
	return m.Sum(nil)
}
