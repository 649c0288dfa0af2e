package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// DefaultTimeout bounds a request when Config.Timeout is zero. It is long
// enough for a deployment of a large configuration and short enough that a
// CLI talking to a hung admin node gives up on its own.
const DefaultTimeout = time.Minute

// DefaultConnectTimeout bounds connecting when Config.ConnectTimeout is
// zero: a host that does not answer at all is given up for the next admin
// node well within a heartbeat or two.
const DefaultConnectTimeout = 5 * time.Second

// Config says which admin node to talk to, as whom, and how to trust it.
type Config struct {
	// Address is the admin node's base URL, "https://admin.example.com:8090".
	// A bare "host:port" means HTTPS. Plain HTTP, for an admin node run
	// with --insecure-http, must be asked for with "http://": every
	// request but two carries a bearer token.
	//
	// Several admin nodes of one domain are given as a comma-separated
	// list, or in Addresses instead; a host name with several IP addresses
	// counts as one admin node per address (see Addresses).
	Address string
	// Addresses are the admin nodes of one domain, in the order they are
	// tried, each as Address says. The client sticks to one and moves to
	// the next when it cannot connect (refused, reset, timed out, TLS
	// handshake failed) or the admin node answers 500, 502, 503 or 504;
	// a 4xx is an answer about the request and never moves it. A host
	// name that resolves to several IP addresses is one endpoint per IP,
	// each dialled directly while the certificate is checked against the
	// name. The failed request itself is sent again to the next admin
	// node only when that cannot apply it twice: a GET (blocking queries
	// included), a heartbeat, a traffic batch (its ID makes a second
	// copy a no-op), or any request whose connection failed before it
	// was sent. Any other request that may have reached an admin node
	// (a deploy that got a 503, or whose connection was reset after it
	// was sent) fails with that error and is not sent again: the caller
	// decides, after looking, whether to repeat it.
	Addresses []string
	// Resolver resolves the host names of the addresses, at the first
	// request and again after a request found every admin node failing;
	// net.DefaultResolver when nil. Unused with HTTPClient, whose own dial
	// resolves names.
	Resolver Resolver
	// OnFailover, when set, is called each time the client moves from one
	// admin node to the next, with the error that made it move.
	OnFailover func(from, to string, cause error)
	// Token is the bearer token ("gh_<id>_<secret>") of every request but
	// Login and Health.
	Token string
	// CACertPEM holds the CA certificates to trust instead of the system
	// roots: normally the domain CA.
	CACertPEM []byte
	// CAFingerprint pins the domain CA when CACertPEM is nil: "SHA256:"
	// and the hex SHA-256 of the CA certificate's DER, as `admin init`
	// prints it (either case; colons between bytes are allowed). The
	// server is trusted when the chain it presents holds a certificate
	// with that fingerprint which signed its leaf for Address's host.
	CAFingerprint string
	// RootCAs, when set, gives the CA certificates to trust at each
	// handshake instead of CACertPEM's fixed ones: a node manager's trust
	// bundle changes during a CA rotation.
	RootCAs func() *x509.CertPool
	// HTTPClient, when set, is used as it is. It cannot be combined with
	// CACertPEM or CAFingerprint, whose TLS settings it would bypass.
	HTTPClient *http.Client
	// Timeout bounds each request, DefaultTimeout when zero. It does not
	// apply to HTTPClient, which has its own.
	Timeout time.Duration
	// ConnectTimeout bounds connecting to one admin node, TCP and TLS
	// handshake each, DefaultConnectTimeout when zero: how long an admin
	// node whose host is gone costs before the next is tried. It does not
	// apply to HTTPClient.
	ConnectTimeout time.Duration
	// ClientCertificate, when set, gives the node manager's certificate for
	// the agent API's mutual TLS; it is asked at every handshake, so that a
	// renewed certificate is used from the next connection on.
	ClientCertificate func() (*tls.Certificate, error)
}

// Client calls the admin API. It is safe for concurrent use.
type Client struct {
	eps   *endpoints
	token string
	// caPEM is Config.CACertPEM; pin is set instead when the CA is pinned
	// by fingerprint. Both are nil when the system roots are trusted.
	caPEM []byte
	pin   *pin
}

// New checks cfg and returns a client. It does not connect.
func New(cfg Config) (*Client, error) {
	list := cfg.Addresses
	switch {
	case cfg.Address != "" && len(cfg.Addresses) > 0:
		return nil, errors.New("client: give Address or Addresses, not both")
	case cfg.Address != "":
		list = splitAddresses(cfg.Address)
	}
	if len(list) == 0 {
		return nil, errors.New("client: no admin node address")
	}
	addrs := make([]address, 0, len(list))
	for _, a := range list {
		if a == "" && len(list) > 1 {
			return nil, fmt.Errorf("client: admin node addresses %q: an empty one", strings.Join(list, ","))
		}
		u, err := parseAddress(a)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, address{url: u, resolve: net.ParseIP(u.Hostname()) == nil && cfg.HTTPClient == nil})
	}
	c := &Client{token: cfg.Token}
	resolver := cfg.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	c.eps = &endpoints{addrs: addrs, resolver: resolver, onMove: cfg.OnFailover, known: map[string]*endpoint{}}
	trust := cfg.CACertPEM != nil || cfg.CAFingerprint != "" || cfg.RootCAs != nil
	switch {
	case trust && cfg.HTTPClient != nil:
		return nil, errors.New("client: HTTPClient cannot be combined with CACertPEM or CAFingerprint")
	case trust && slices.ContainsFunc(addrs, func(a address) bool { return a.url.Scheme == "http" }):
		i := slices.IndexFunc(addrs, func(a address) bool { return a.url.Scheme == "http" })
		return nil, fmt.Errorf("client: %s is plain HTTP: there is no certificate to check against a CA", list[i])
	case cfg.HTTPClient != nil:
		c.eps.newHTTP = func(*url.URL, net.IP) *http.Client { return cfg.HTTPClient }
		return c, nil
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.ClientCertificate != nil {
		get := cfg.ClientCertificate
		tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return get() }
	}
	var roots func() *x509.CertPool
	switch {
	case cfg.RootCAs != nil:
		roots = cfg.RootCAs
		// The standard verification reads a fixed pool: VerifyConnection
		// verifies against the current one instead.
		tlsConfig.InsecureSkipVerify = true
	case cfg.CACertPEM != nil:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CACertPEM) {
			return nil, errors.New("client: CACertPEM holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
		c.caPEM = cfg.CACertPEM
	case cfg.CAFingerprint != "":
		sum, err := parseFingerprint(cfg.CAFingerprint)
		if err != nil {
			return nil, err
		}
		c.pin = &pin{sum: sum}
		// The standard verification would fail before the pin is looked
		// at, since the domain CA is in no root pool: VerifyConnection
		// does the whole verification instead (for each endpoint, with
		// its host name).
		tlsConfig.InsecureSkipVerify = true
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	connect := cfg.ConnectTimeout
	if connect == 0 {
		connect = DefaultConnectTimeout
	}
	c.eps.newHTTP = func(u *url.URL, ip net.IP) *http.Client {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = tlsConfig.Clone()
		transport.TLSHandshakeTimeout = connect
		dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
		transport.DialContext = dialer.DialContext
		if c.pin != nil {
			transport.TLSClientConfig.VerifyConnection = c.pin.verifier(u.Hostname())
		}
		if roots != nil {
			transport.TLSClientConfig.VerifyConnection = verifyWith(roots, u.Hostname())
		}
		if ip != nil {
			transport.DialContext = dialIP(dialer, u, ip)
		}
		return &http.Client{Transport: transport, Timeout: timeout}
	}
	return c, nil
}

// Reconnect has the requests from now on made over new connections: a
// node manager's renewed certificate is presented in the TLS handshake
// only, so the connections made with the previous one would go on
// presenting it. Requests under way finish on their connection.
func (c *Client) Reconnect() { c.eps.reconnect() }

// verifyWith verifies the server's chain against the roots of the
// moment, as the standard verification would against a fixed pool.
func verifyWith(roots func() *x509.CertPool, host string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("client: the admin node presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots(), Intermediates: inter, DNSName: host})
		if err != nil {
			return fmt.Errorf("client: admin node certificate: %w", err)
		}
		return nil
	}
}

// dialIP dials ip instead of u's host name, so that each address of a name
// is an admin node of its own; the URL keeps the name, which the TLS
// handshake sends and checks. Other dials (to a proxy) are left alone.
func dialIP(dialer *net.Dialer, u *url.URL, ip net.IP) func(ctx context.Context, network, addr string) (net.Conn, error) {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	target := net.JoinHostPort(u.Hostname(), port)
	direct := net.JoinHostPort(ip.String(), port)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == target {
			addr = direct
		}
		return dialer.DialContext(ctx, network, addr)
	}
}

func parseAddress(addr string) (*url.URL, error) {
	if addr == "" {
		return nil, errors.New("client: no admin node address")
	}
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("client: admin node address: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: admin node address %q: want https://host[:port]", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// request is one call of the API. path is below apitypes.Prefix, with its
// segments already escaped.
type request struct {
	method string
	path   string
	query  url.Values
	// body is sent with contentType when not nil.
	body        []byte
	contentType string
	// ifMatch is the If-Match header, if any.
	ifMatch string
	// anonymous requests go without the token: a stale token must not
	// make Login or Health fail.
	anonymous bool
	// agent requests go to the agent API (apitypes.AgentPrefix).
	agent bool
	// idempotent requests other than GETs may be sent again to the next
	// admin node after they may have reached one: a second copy changes
	// nothing (a heartbeat, a traffic batch with its ID).
	idempotent bool
}

// replayable says whether r may be sent to another admin node after it
// may have reached one (Config.Addresses).
func (r request) replayable() bool {
	return r.method == http.MethodGet || r.method == http.MethodHead || r.idempotent
}

// jsonRequest is a request whose body, when in is not nil, is in in JSON.
func jsonRequest(method, path string, in any) (request, error) {
	r := request{method: method, path: path}
	if in == nil {
		return r, nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return r, fmt.Errorf("encode request of %s %s: %w", method, path, err)
	}
	r.body, r.contentType = b, "application/json"
	return r, nil
}

// get calls GET path and decodes the answer into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: path, query: query}, out)
	return err
}

// send calls method on path with in as the JSON body and decodes the
// answer into out; in and out may be nil.
func (c *Client) send(ctx context.Context, method, path string, in, out any) error {
	r, err := jsonRequest(method, path, in)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, r, out)
	return err
}

// do sends r and decodes a successful answer into out, which may be nil.
// It returns the answer's header for the callers that read an ETag. It
// tries the admin nodes from the current one on, as Config.Addresses says.
func (c *Client) do(ctx context.Context, r request, out any) (http.Header, error) {
	eps, first := c.eps.current(ctx)
	var err error
	for i := range eps {
		ep := eps[(first+i)%len(eps)]
		attempt, cancel := context.WithCancelCause(ctx)
		if r.replayable() {
			// Another request found this admin node failing: this one
			// goes on at the next rather than wait for its timeout.
			left := c.eps.leftOf(ep)
			go func() {
				select {
				case <-left:
					cancel(errLeft)
				case <-attempt.Done():
				}
			}()
		}
		var resp *http.Response
		var sent bool
		resp, sent, err = c.send1(attempt, ep, r)
		switch {
		case err != nil && ctx.Err() != nil:
			cancel(nil)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// The admin node did not answer in the time the caller
				// gives it: the next request goes to another.
				c.eps.failed(ep, err)
			}
			return nil, err
		case err != nil:
			cancel(nil)
			c.eps.failed(ep, err)
			if sent && !r.replayable() {
				if len(eps) > 1 {
					err = fmt.Errorf("%w (the request may have reached the admin node: it is not sent to another)", err)
				}
				return nil, err
			}
			continue
		case movesOn(resp.StatusCode):
			err = newAPIError(resp)
			resp.Body.Close()
			cancel(nil)
			c.eps.failed(ep, err)
			if !r.replayable() {
				return nil, err
			}
			continue
		}
		h, err := decode(r, resp, out)
		resp.Body.Close()
		cancel(nil)
		return h, err
	}
	c.eps.exhausted()
	if len(eps) > 1 {
		err = fmt.Errorf("no admin node of %d answered; the last: %w", len(eps), err)
	}
	return nil, err
}

// errLeft ends a request waiting on an admin node the client has moved off.
var errLeft = errors.New("the client moved to another admin node")

// send1 sends r to one endpoint. sent says whether the request may have
// reached it: its headers were written before the error.
func (c *Client) send1(ctx context.Context, ep *endpoint, r request) (*http.Response, bool, error) {
	prefix := apitypes.Prefix
	if r.agent {
		prefix = apitypes.AgentPrefix
	}
	target := ep.base + prefix + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, false, fmt.Errorf("build request %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.ifMatch != "" {
		req.Header.Set("If-Match", r.ifMatch)
	}
	if c.token != "" && !r.anonymous {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// *url.Error already says which request failed.
	resp, err := ep.http.Load().Do(req)
	return resp, wrote.Load(), err
}

// decode reads an answer into out, which may be nil.
func decode(r request, resp *http.Response, out any) (http.Header, error) {
	path := resp.Request.URL.EscapedPath()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newAPIError(resp)
	}
	if consume, ok := out.(bodyConsumer); ok {
		// An answer too large to hold (a backup) is read as it comes.
		if err := consume(resp.Header, resp.Body); err != nil {
			return nil, fmt.Errorf("read answer to %s %s: %w", r.method, path, err)
		}
		return resp.Header, nil
	}
	if raw, ok := out.(*[]byte); ok {
		// An answer that is a file (a package) is kept byte for byte.
		var err error
		if *raw, err = io.ReadAll(resp.Body); err != nil {
			return nil, fmt.Errorf("read answer to %s %s: %w", r.method, path, err)
		}
		return resp.Header, nil
	}
	if out != nil {
		err := json.NewDecoder(resp.Body).Decode(out)
		if err != nil && !errors.Is(err, io.EOF) { // EOF: an empty body, as of 204
			return nil, fmt.Errorf("decode answer to %s %s: %w", r.method, path, err)
		}
	}
	// Drained so that the connection can be reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header, nil
}

// etag is the entity tag of a version: the decimal number, quoted as HTTP
// wants entity tags to be.
func etag(version uint64) string {
	return `"` + strconv.FormatUint(version, 10) + `"`
}

// versionOf reads the version an ETag header carries, quoted or not, weak
// or not; 0 when there is none.
func versionOf(h http.Header) uint64 {
	tag := strings.TrimPrefix(h.Get("ETag"), "W/")
	v, err := strconv.ParseUint(strings.Trim(tag, `"`), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// segments escapes each part of a path and joins them, each preceded by a
// slash, so that a name holding "/" or "?" cannot change the route.
func segments(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}
