package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The agent API is the node managers' (docs/node-manager.md): every call
// but Join authenticates with Config.ClientCertificate.

func (c *Client) agent(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.agentCall(ctx, method, path, query, in, out, false)
}

// agentCall is agent, for an idempotent request when idempotent is set:
// it may be sent again to the next admin node (Config.Addresses).
func (c *Client) agentCall(ctx context.Context, method, path string, query url.Values, in, out any, idempotent bool) error {
	r, err := jsonRequest(method, path, in)
	if err != nil {
		return err
	}
	r.agent, r.anonymous, r.query, r.idempotent = true, true, query, idempotent
	_, err = c.do(ctx, r, out)
	return err
}

// Join exchanges a join token and a CSR (PEM) for the node's certificate.
func (c *Client) Join(ctx context.Context, token string, csrPEM []byte) (apitypes.AgentJoinResponse, error) {
	var out apitypes.AgentJoinResponse
	err := c.agent(ctx, http.MethodPost, "/join", nil, apitypes.AgentJoinRequest{Token: token, CSR: string(csrPEM)}, &out)
	return out, err
}

// CA returns the domain's trust bundle and the root issuing node
// certificates.
func (c *Client) CA(ctx context.Context) (apitypes.AgentCA, error) {
	var out apitypes.AgentCA
	err := c.agentCall(ctx, http.MethodGet, "/ca", nil, nil, &out, true)
	return out, err
}

// Renew exchanges a new CSR for a new certificate of the same host.
func (c *Client) Renew(ctx context.Context, csrPEM []byte) (apitypes.AgentRenewResponse, error) {
	var out apitypes.AgentRenewResponse
	err := c.agent(ctx, http.MethodPost, "/renew", nil, apitypes.AgentRenewRequest{CSR: string(csrPEM)}, &out)
	return out, err
}

// Heartbeat reports the state of every instance of the host. It replaces
// the last report, so it is sent again to the next admin node on failure.
func (c *Client) Heartbeat(ctx context.Context, hb apitypes.AgentHeartbeat) (apitypes.AgentHeartbeatAnswer, error) {
	var out apitypes.AgentHeartbeatAnswer
	err := c.agentCall(ctx, http.MethodPut, "/heartbeat", nil, hb, &out, true)
	return out, err
}

// SendTraffic sends a batch of the host's traffic counts. The answer's Seq
// is the highest stored for the host: every batch up to it may be deleted
// from the spool, including this one when it was a retry. An APIError
// with status 400 is a batch the admin node can never store. A batch is
// stored once by its (node, seq) whichever admin node gets it, so it is
// sent again, unchanged, to the next admin node on failure.
func (c *Client) SendTraffic(ctx context.Context, b traffic.Batch) (traffic.Ack, error) {
	var out traffic.Ack
	err := c.agentCall(ctx, http.MethodPost, "/traffic", nil, b, &out, true)
	return out, err
}

// blocking builds the query of a blocking query; index nil asks for an
// immediate answer.
func blocking(index *uint64, wait time.Duration) url.Values {
	q := url.Values{}
	if index != nil {
		q.Set("index", strconv.FormatUint(*index, 10))
		q.Set("wait", wait.String())
	}
	return q
}

// WatchInstances returns the host's desired instances: at once when index
// is nil, else when their index differs from *index or after wait. The
// client's Timeout must be longer than wait.
func (c *Client) WatchInstances(ctx context.Context, index *uint64, wait time.Duration) (apitypes.AgentInstances, error) {
	var out apitypes.AgentInstances
	err := c.agent(ctx, http.MethodGet, "/instances", blocking(index, wait), nil, &out)
	return out, err
}

// WatchDeployment returns the group's current deployment, as
// WatchInstances does.
func (c *Client) WatchDeployment(ctx context.Context, group string, index *uint64, wait time.Duration) (apitypes.AgentDeployment, error) {
	var out apitypes.AgentDeployment
	err := c.agent(ctx, http.MethodGet, segments("groups", group, "deployment"), blocking(index, wait), nil, &out)
	return out, err
}
