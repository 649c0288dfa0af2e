package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// Client is a gateway's client of the local API: it watches the instance's
// deployment and reports what the instance runs. It is safe for concurrent
// use.
type Client struct {
	base     *url.URL
	instance string
	secret   string
	http     *http.Client
}

// New returns a client of the local API at baseURL (DefaultURL, usually)
// for instance, authenticating with its secret. A nil httpClient uses a
// client of its own. Blocking queries set their own deadline from their
// wait, so httpClient should have no Timeout shorter than that.
func New(baseURL, instance, secret string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("node manager URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("node manager URL %q: want http://host:port", baseURL)
	}
	if instance == "" {
		return nil, errors.New("local API client: no instance name")
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/"), strings.TrimSuffix(u.RawPath, "/")
	return &Client{base: u, instance: instance, secret: secret, http: httpClient}, nil
}

// URL returns the base URL the client talks to.
func (c *Client) URL() string { return c.base.String() }

// StatusError is an answer of the node manager other than 2xx.
type StatusError struct {
	StatusCode int
	Code       string // from the error body, when there is one
	Message    string
}

func (e *StatusError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("node manager answered %d %s: %s", e.StatusCode, e.Code, e.Message)
	}
	return fmt.Sprintf("node manager answered %d: %s", e.StatusCode, e.Message)
}

// blockingSlack is added to a blocking query's wait for its deadline: the
// server's jitter (up to wait/16) and the time to answer.
const blockingSlack = 10 * time.Second

// WatchDeployment asks for the deployment of the instance's group: the
// answer comes at once when its index differs from index, else when it
// changes, else after wait (0: DefaultWait) with the same index. Call it
// again with the answer's Index. An error leaves the caller to retry.
func (c *Client) WatchDeployment(ctx context.Context, index uint64, wait time.Duration) (DeploymentAnswer, error) {
	if wait <= 0 {
		wait = DefaultWait
	}
	wait = min(wait, MaxWait)
	ctx, cancel := context.WithTimeout(ctx, wait+wait/16+blockingSlack)
	defer cancel()
	q := url.Values{}
	q.Set(QueryInstance, c.instance)
	q.Set(QueryIndex, strconv.FormatUint(index, 10))
	q.Set(QueryWait, wait.String())
	var out DeploymentAnswer
	if err := c.do(ctx, http.MethodGet, PathDeployment, q, nil, &out); err != nil {
		return DeploymentAnswer{}, fmt.Errorf("watch deployment (index %d): %w", index, err)
	}
	return out, nil
}

// reportTimeout bounds a report: the node manager answers it at once.
const reportTimeout = 10 * time.Second

// Report tells the node manager what the instance runs now.
func (c *Client) Report(ctx context.Context, r Report) error {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	path := PathInstances + "/" + url.PathEscape(c.instance) + "/report"
	if err := c.do(ctx, http.MethodPut, path, nil, r, nil); err != nil {
		return fmt.Errorf("report to node manager: %w", err)
	}
	return nil
}

// PushTraffic gives the node manager the gateway's last traffic snapshot
// (PUT /v1/instances/{name}/traffic, body traffic.Snapshot): a stopping
// gateway's requests since the node manager last read its /traffic would
// otherwise be lost with the process.
func (c *Client) PushTraffic(ctx context.Context, s traffic.Snapshot) error {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	path := PathInstances + "/" + url.PathEscape(c.instance) + "/traffic"
	if err := c.do(ctx, http.MethodPut, path, nil, s, nil); err != nil {
		return fmt.Errorf("push traffic to node manager: %w", err)
	}
	return nil
}

// do sends a request to path, which is escaped already (an instance name
// is one segment even if it holds a slash).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return fmt.Errorf("request path %q: %w", u.RawPath, err)
	}
	u.Path = p
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.secret != "" {
		req.Header.Set(HeaderAuthorization, BearerPrefix+c.secret)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Bodies of the local API are small; the limit keeps a confused server
	// from making a gateway read without end.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return statusError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

func statusError(code int, body []byte) *StatusError {
	e := &StatusError{StatusCode: code}
	var eb ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(code)
	}
	e.Message = msg
	return e
}
