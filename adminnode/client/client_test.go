package client

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

func mustCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "https", cfg: Config{Address: "https://admin.example.com:8090/"}},
		{name: "bare host and port", cfg: Config{Address: "127.0.0.1:8090"}},
		{name: "no address", cfg: Config{}, wantErr: "no admin node address"},
		{name: "plain HTTP", cfg: Config{Address: "http://127.0.0.1:8090"}},
		{name: "plain HTTP with a CA", cfg: Config{Address: "http://127.0.0.1:8090", CACertPEM: []byte("x")}, wantErr: "is plain HTTP"},
		{name: "another scheme", cfg: Config{Address: "ftp://h:1"}, wantErr: "want https://host[:port]"},
		{name: "query", cfg: Config{Address: "https://h:1/?x=1"}, wantErr: "want https://host[:port]"},
		{name: "bad fingerprint", cfg: Config{Address: "h:1", CAFingerprint: "SHA256:abc"}, wantErr: "64 hex digits"},
		{name: "fingerprint without algorithm", cfg: Config{Address: "h:1", CAFingerprint: strings.Repeat("ab", 32)}, wantErr: `want SHA256:`},
		{name: "CA without certificate", cfg: Config{Address: "h:1", CACertPEM: []byte("nothing")}, wantErr: "no PEM certificate"},
		{
			name: "HTTP client with CA", cfg: Config{Address: "h:1", HTTPClient: http.DefaultClient, CAFingerprint: "SHA256:" + strings.Repeat("ab", 32)},
			wantErr: "cannot be combined",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// recorded is what a fake server saw of one request.
type recorded struct {
	method, uri, auth, ifMatch, contentType, body string
}

// fake answers every request with status, header and body, recording it.
type fake struct {
	mu       sync.Mutex
	requests []recorded
	status   int
	header   http.Header
	body     string
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, recorded{
		method: r.Method, uri: r.RequestURI, auth: r.Header.Get("Authorization"),
		ifMatch: r.Header.Get("If-Match"), contentType: r.Header.Get("Content-Type"), body: string(body),
	})
	for k, v := range f.header {
		w.Header()[k] = v
	}
	status := f.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, f.body)
}

func (f *fake) last(t *testing.T) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("no request reached the server")
	}
	return f.requests[len(f.requests)-1]
}

func fakeClient(t *testing.T, f *fake) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	c, err := New(Config{Address: srv.URL, Token: "gh_id_secret", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRequests(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		call func(ctx context.Context, c *Client) error
		want recorded
	}{
		{
			name: "selector",
			call: func(ctx context.Context, c *Client) error { _, err := c.ListGroups(ctx, "env=prod,team=a"); return err },
			want: recorded{method: "GET", uri: "/api/v1/groups?selector=env%3Dprod%2Cteam%3Da"},
		},
		{
			name: "no selector",
			call: func(ctx context.Context, c *Client) error { _, err := c.ListGroups(ctx, ""); return err },
			want: recorded{method: "GET", uri: "/api/v1/groups"},
		},
		{
			name: "names are escaped",
			call: func(ctx context.Context, c *Client) error { _, err := c.GetGroup(ctx, "a/b?c"); return err },
			want: recorded{method: "GET", uri: "/api/v1/groups/a%2Fb%3Fc"},
		},
		{
			name: "instance filter",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ListInstances(ctx, InstanceFilter{Group: "web", Status: "Only Heartbeat"})
				return err
			},
			want: recorded{method: "GET", uri: "/api/v1/instances?group=web&status=Only+Heartbeat"},
		},
		{
			name: "audit filter",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Audit(ctx, AuditFilter{User: "alice", Action: "draft.update", Group: "web", Since: since,
					Until: since.Add(time.Hour), Limit: 50, Before: 1234})
				return err
			},
			want: recorded{method: "GET", uri: "/api/v1/audit?action=draft.update&before=1234&group=web&limit=50" +
				"&since=2026-03-01T12%3A00%3A00Z&until=2026-03-01T13%3A00%3A00Z&user=alice"},
		},
		{
			name: "all tokens",
			call: func(ctx context.Context, c *Client) error { _, err := c.ListTokens(ctx, AllUsers); return err },
			want: recorded{method: "GET", uri: "/api/v1/tokens?user=%2A"},
		},
		{
			name: "latest deployment",
			call: func(ctx context.Context, c *Client) error { _, err := c.GetDeployment(ctx, "web", Latest); return err },
			want: recorded{method: "GET", uri: "/api/v1/groups/web/deployments/latest"},
		},
		{
			name: "diff",
			call: func(ctx context.Context, c *Client) error { _, err := c.Diff(ctx, "web", "3", Latest); return err },
			want: recorded{method: "GET", uri: "/api/v1/groups/web/deployments/3/diff/latest"},
		},
		{
			name: "update group with version",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UpdateGroup(ctx, apitypes.Group{Name: "web", Description: "d"}, 7)
				return err
			},
			want: recorded{method: "PUT", uri: "/api/v1/groups/web", ifMatch: `"7"`, contentType: "application/json",
				body: `{"name":"web","description":"d"}`},
		},
		{
			name: "update group without version",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UpdateGroup(ctx, apitypes.Group{Name: "web"}, 0)
				return err
			},
			want: recorded{method: "PUT", uri: "/api/v1/groups/web", contentType: "application/json", body: `{"name":"web"}`},
		},
		{
			name: "put draft of a new group",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.PutDraft(ctx, "web", []byte("upstreams: []\n"), "application/yaml", 0)
				return err
			},
			want: recorded{method: "PUT", uri: "/api/v1/groups/web/draft", ifMatch: `"0"`, contentType: "application/yaml",
				body: "upstreams: []\n"},
		},
		{
			name: "validate the stored draft",
			call: func(ctx context.Context, c *Client) error { _, err := c.ValidateDraft(ctx, "web", nil, ""); return err },
			want: recorded{method: "POST", uri: "/api/v1/groups/web/draft/validate"},
		},
		{
			name: "rollback",
			call: func(ctx context.Context, c *Client) error { _, err := c.Rollback(ctx, "web", 3, "bad"); return err },
			want: recorded{method: "POST", uri: "/api/v1/groups/web/deployments/3/rollback", contentType: "application/json",
				body: `{"message":"bad"}`},
		},
		{
			name: "replace an environment at a version",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ReplaceEnvironment(ctx, "prod", map[string]string{"A": "1"}, 4)
				return err
			},
			want: recorded{method: "PUT", uri: "/api/v1/environments/prod", ifMatch: `"4"`, contentType: "application/json",
				body: `{"values":{"A":"1"}}`},
		},
		{
			name: "edit an environment",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.EditEnvironment(ctx, "prod", map[string]string{"A": "1"}, []string{"B"})
				return err
			},
			want: recorded{method: "PATCH", uri: "/api/v1/environments/prod", contentType: "application/json",
				body: `{"set":{"A":"1"},"unset":["B"]}`},
		},
		{
			name: "set a secret",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.SetSecret(ctx, "prod", "DB_PASSWORD", "pw")
				return err
			},
			want: recorded{method: "PUT", uri: "/api/v1/environments/prod/secrets/DB_PASSWORD", contentType: "application/json",
				body: `{"value":"pw"}`},
		},
		{
			name: "trust a domain",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.TrustDomain(ctx, "dev", "ed25519:AA==")
				return err
			},
			want: recorded{method: "PUT", uri: "/api/v1/trusted-domains/dev", contentType: "application/json",
				body: `{"public_key":"ed25519:AA=="}`},
		},
		{
			name: "route of a draft service",
			call: func(ctx context.Context, c *Client) error { return c.DeleteDraftRoute(ctx, "web", "orders", "list") },
			want: recorded{method: "DELETE", uri: "/api/v1/groups/web/draft/services/orders/routes/list"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// null decodes into any answer type.
			f := &fake{body: "null"}
			c := fakeClient(t, f)
			if err := tt.call(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			got := f.last(t)
			tt.want.auth = "Bearer gh_id_secret"
			if got != tt.want {
				t.Errorf("request\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Login and Health go without the token: a stale one must not fail them.
func TestAnonymousRoutes(t *testing.T) {
	f := &fake{body: `{"user":"admin","token":"gh_new_secret"}`}
	c := fakeClient(t, f)
	resp, err := c.Login(context.Background(), "admin", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Token != "gh_new_secret" {
		t.Errorf("token = %q", resp.Token)
	}
	got := f.last(t)
	want := recorded{method: "POST", uri: "/api/v1/auth/login", contentType: "application/json", body: `{"user":"admin","password":"pw"}`}
	if got != want {
		t.Errorf("login request\n got %+v\nwant %+v", got, want)
	}
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t); got.auth != "" {
		t.Errorf("health sent Authorization %q", got.auth)
	}
}

func TestDraftVersionFromETag(t *testing.T) {
	f := &fake{header: http.Header{"Etag": {`"12"`}}, body: `{"group":"web","config":{}}`}
	c := fakeClient(t, f)
	d, err := c.GetDraft(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != 12 {
		t.Errorf("version = %d, want 12 from the ETag", d.Version)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   string
	}{
		{
			name:   "invalid configuration",
			status: http.StatusUnprocessableEntity,
			body: `{"error":{"code":"invalid_config","message":"configuration has 2 errors","field":"services[0].routes[0].paths[0]",
				"errors":[{"field":"services[0].routes[0].paths[0]","message":"must start with \"/\""},
				{"field":"upstreams[0].targets","message":"must not be empty","line":7}],"request_id":"r1"}}`,
			want: "invalid_config: configuration has 2 errors\n" +
				"  services[0].routes[0].paths[0]: must start with \"/\"\n" +
				"  upstreams[0].targets: must not be empty (line 7)",
		},
		{
			name:   "one error, already in the message",
			status: http.StatusUnprocessableEntity,
			body: `{"error":{"code":"invalid_config","message":"configuration is invalid: services[0].name: must not be empty",
				"errors":[{"field":"services[0].name","message":"must not be empty"}]}}`,
			want: "invalid_config: configuration is invalid: services[0].name: must not be empty",
		},
		{
			name:   "bad parameter",
			status: http.StatusBadRequest,
			body:   `{"error":{"code":"bad_request","message":"limit must be a number","field":"limit","request_id":"r2"}}`,
			want:   "bad_request: limit must be a number (field limit)",
		},
		{
			name:   "rate limited",
			status: http.StatusTooManyRequests,
			header: http.Header{"Retry-After": {"300"}},
			body:   `{"error":{"code":"too_many_requests","message":"too many failed logins"}}`,
			want:   "too_many_requests: too many failed logins (retry in 5m0s)",
		},
		{
			name:   "server error shows the request ID",
			status: http.StatusInternalServerError,
			body:   `{"error":{"code":"internal","message":"internal error","request_id":"r3"}}`,
			want:   "internal: internal error (request r3)",
		},
		{
			name:   "not the API",
			status: http.StatusBadGateway,
			body:   "<html>upstream down</html>\n<p>more</p>",
			want:   "HTTP 502 Bad Gateway: <html>upstream down</html>",
		},
		{
			name:   "empty body",
			status: http.StatusServiceUnavailable,
			want:   "HTTP 503 Service Unavailable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeClient(t, &fake{status: tt.status, header: tt.header, body: tt.body})
			_, err := c.GetGroup(context.Background(), "web")
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tt.want)
			}
			if !IsStatus(err, tt.status) || IsStatus(err, http.StatusOK) {
				t.Errorf("IsStatus(err, %d) is wrong for %v", tt.status, err)
			}
		})
	}
}
