package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

const testPassword = "correct horse battery"

// testHash is testPassword hashed at the lowest cost, once.
var testHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// env is an admin API over a real bbolt store, served over HTTP on
// loopback.
type env struct {
	t     testing.TB
	store store.Store
	srv   *Server
	http  *httptest.Server
	pub   ed25519.PublicKey
	ca    *ca.CA
	// settingsKey seals the environments' secrets.
	settingsKey *seal.Key
	now         time.Time
	clock       sync.Mutex
	seq         int
	admin       string // bearer of the admin user
}

var bg = context.Background()

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub, key, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	dom := store.Domain{Name: "test", SigningPublicKey: pub}
	if err := st.InitDomain(bg, dom); err != nil {
		t.Fatal(err)
	}
	for _, r := range rbac.BuiltInRoles() {
		if _, err := st.CreateRole(bg, r); err != nil {
			t.Fatal(err)
		}
	}
	// The test clock starts at the real time, which TLS handshakes check
	// certificates against; tests move it forward.
	e := &env{t: t, store: st, pub: pub, now: time.Now().UTC().Truncate(time.Second)}
	if e.ca, err = ca.New("test", e.now); err != nil {
		t.Fatal(err)
	}
	if e.settingsKey, err = seal.Parse(seal.NewKeyFile()); err != nil {
		t.Fatal(err)
	}
	e.srv, err = New(Config{Store: st, Domain: dom, SigningKey: key, SettingsKey: e.settingsKey, CA: e.ca, CAFingerprint: e.ca.Fingerprint(),
		PasswordCost: bcrypt.MinCost, Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.http.Close)
	e.admin = e.user("admin", rbac.RoleDomainAdmin, store.Scope{Domain: true})
	return e
}

func (e *env) clockNow() time.Time {
	e.clock.Lock()
	defer e.clock.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.clock.Lock()
	e.now = e.now.Add(d)
	e.clock.Unlock()
}

// name returns a fresh name with prefix.
func (e *env) name(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s-%d", prefix, e.seq)
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// user creates a user (password testPassword) bound to role in scope and
// returns a bearer token of it, made directly in the store.
func (e *env) user(name, role string, scope store.Scope) string {
	e.t.Helper()
	must[store.User](e.t)(e.store.CreateUser(bg, store.User{Name: name, PasswordHash: testHash()}))
	must[store.RoleBinding](e.t)(e.store.CreateRoleBinding(bg, store.RoleBinding{User: name, Role: role, Scope: scope}))
	return e.token(name)
}

func (e *env) token(user string) string {
	e.t.Helper()
	tok := must[auth.Token](e.t)(auth.NewToken())
	must[store.Token](e.t)(e.store.CreateToken(bg, store.Token{ID: tok.ID, User: user, SecretHash: auth.HashSecret(tok.Secret)}))
	return tok.Bearer
}

// reply is an answer of the API.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; body is sent as is when []byte or string, else as
// JSON. headers alternate names and values.
func (e *env) do(token, method, path string, body any, headers ...string) reply {
	e.t.Helper()
	return e.doWith(e.http.Client(), token, method, path, body, headers...)
}

// from returns a client whose connections come from ip, a loopback
// address other than 127.0.0.1, to be another source to the server.
func (e *env) from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// doWith is do with client.
func (e *env) doWith(client *http.Client, token, method, path string, body any, headers ...string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.http.URL+"/api/v1"+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

// expect fails the test unless the reply has status.
func (r reply) expect(t testing.TB, status int, what string) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
	return r
}

// config is a small valid configuration with a service "svc" routing to
// upstream "up".
func config(path string) string {
	return `upstreams:
  - name: up
    targets: [{address: "127.0.0.1:9001"}]
services:
  - name: svc
    upstream: up
    routes:
      - name: r1
        paths: ["` + path + `"]
consumers:
  - name: alice
    credentials: [{type: key, key: alice-secret-key}]
`
}

// group creates a group with labels and a draft of config("/a").
func (e *env) group(name string, labels map[string]string) {
	e.t.Helper()
	must[store.Group](e.t)(e.store.CreateGroup(bg, store.Group{Name: name, Labels: labels}))
	cfg := must[*deploy.Config](e.t)(deploy.Decode([]byte(config("/a"))))
	must[store.Draft](e.t)(e.store.PutDraft(bg, name, *cfg, 0, "admin"))
}
