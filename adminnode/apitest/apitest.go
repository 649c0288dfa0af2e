// Package apitest serves the real admin API, over a fresh store and over
// TLS from a new domain CA, for the tests of the API's clients (the Go
// client, the CLI): they talk to the server users will, not a stand-in.
package apitest

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// Password is the password of the user "admin".
const Password = "correct horse battery"

// AdminNode serves the API of a new domain "test" with the built-in roles
// and the user "admin" (domain-admin), over TLS with a certificate for
// localhost and 127.0.0.1 followed by the domain CA, as the admin node
// sends them. Everything is closed when the test ends.
func AdminNode(t testing.TB) (*httptest.Server, *ca.CA) {
	t.Helper()
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
	check(err)
	t.Cleanup(func() { st.Close() })
	pub, key, err := deploy.GenerateSigningKey()
	check(err)
	dom := store.Domain{Name: "test", SigningPublicKey: pub}
	check(st.InitDomain(ctx, dom))
	for _, r := range rbac.BuiltInRoles() {
		_, err := st.CreateRole(ctx, r)
		check(err)
	}
	hash, err := auth.HashPassword(Password, bcrypt.MinCost)
	check(err)
	_, err = st.CreateUser(ctx, store.User{Name: "admin", PasswordHash: hash})
	check(err)
	_, err = st.CreateRoleBinding(ctx, store.RoleBinding{User: "admin", Role: rbac.RoleDomainAdmin, Scope: store.Scope{Domain: true}})
	check(err)
	root, err := ca.New("test", time.Now())
	check(err)
	settingsKey, err := seal.Parse(seal.NewKeyFile())
	check(err)
	srv, err := api.New(api.Config{Store: st, Domain: dom, SigningKey: key, SettingsKey: settingsKey,
		CA: root, CAFingerprint: root.Fingerprint(), PasswordCost: bcrypt.MinCost})
	check(err)
	cert, err := root.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour, time.Now())
	check(err)
	block, _ := pem.Decode(root.CertPEM())
	cert.Certificate = append(cert.Certificate, block.Bytes)
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.TLS = root.ServerTLS(cert)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return hs, root
}
