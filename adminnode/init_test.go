package adminnode

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// testCost keeps bcrypt fast in tests.
const testCost = 4

func initDomain(t *testing.T, dir, domain, password string) InitResult {
	t.Helper()
	res, err := Init(context.Background(), InitOptions{DataDir: dir, Domain: domain, Password: password, PasswordCost: testCost})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return res
}

// readAll returns the bytes of every file in dir by name.
func readAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

func TestInitCreatesDomain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	const password = "correct horse battery"
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	res, err := Init(context.Background(), InitOptions{
		DataDir: dir, Domain: "acme", Password: password, PasswordCost: testCost,
		Now: func() time.Time { return at },
	})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if res.Password != "" {
		t.Errorf("Password = %q for a chosen password, want empty", res.Password)
	}
	if res.Domain != "acme" || res.DataDir != dir || res.User != AdminUser {
		t.Errorf("result = %+v", res)
	}

	modes := map[string]fs.FileMode{
		".":             fs.ModeDir | 0o700,
		StoreFile:       0o600,
		CACertFile:      0o644,
		CAKeyFile:       0o600,
		SigningKeyFile:  0o600,
		SettingsKeyFile: 0o600,
	}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("%s mode = %v, want %v", name, got, want)
		}
	}
	if got := len(readAll(t, dir)); got != len(modes)-1 {
		t.Errorf("data dir holds %d files, want %d: %v", got, len(modes)-1, readAll(t, dir))
	}

	certPEM, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if fp, err := ca.Fingerprint(certPEM); err != nil || fp != res.CAFingerprint {
		t.Errorf("ca.crt fingerprint = %s, %v; result says %s", fp, err, res.CAFingerprint)
	}

	s, err := store.Open(filepath.Join(dir, StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	d, err := s.GetDomain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "acme" || d.CACertPEM != string(certPEM) || !d.CreatedAt.Equal(at) {
		t.Errorf("domain = %+v", d)
	}
	if got := deploy.KeyFingerprint(d.SigningPublicKey); got != res.SigningKeyFingerprint {
		t.Errorf("stored signing key %s, result says %s", got, res.SigningKeyFingerprint)
	}
	roles, err := s.ListRoles(ctx)
	if err != nil || len(roles) != len(rbac.BuiltInRoles()) {
		t.Errorf("roles = %v, %v", roles, err)
	}
	u, err := s.GetUser(ctx, AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(u.PasswordHash, password) {
		t.Error("stored hash does not verify the password")
	}
	bindings, err := s.ListRoleBindings(ctx, AdminUser)
	if err != nil || len(bindings) != 1 || bindings[0].Role != rbac.RoleDomainAdmin || !bindings[0].Scope.Domain {
		t.Errorf("bindings = %+v, %v", bindings, err)
	}
	audit, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(audit) != 1 {
		t.Fatalf("audit = %+v, %v", audit, err)
	}
	if e := audit[0]; e.User != AdminUser || e.Action != "domain.init" || e.Result != store.AuditOK {
		t.Errorf("audit entry = %+v", e)
	}
}

func TestInitGeneratesPassword(t *testing.T) {
	dir := t.TempDir()
	res := initDomain(t, dir, "acme", "")
	if err := auth.ValidatePassword(res.Password); err != nil {
		t.Fatalf("generated password %q: %v", res.Password, err)
	}
	s, err := store.Open(filepath.Join(dir, StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.GetUser(context.Background(), AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(u.PasswordHash, res.Password) {
		t.Error("stored hash does not verify the generated password")
	}
}

func TestInitRefusesExistingDomain(t *testing.T) {
	dir := t.TempDir()
	initDomain(t, dir, "acme", "")
	before := readAll(t, dir)
	for _, domain := range []string{"acme", "other"} {
		_, err := Init(context.Background(), InitOptions{DataDir: dir, Domain: domain, PasswordCost: testCost})
		if err == nil || !strings.Contains(err.Error(), "already holds a domain") || !strings.Contains(err.Error(), dir) {
			t.Errorf("second init of %s: err = %v, want already holds a domain, naming %s", domain, err, dir)
		}
	}
	after := readAll(t, dir)
	if len(after) != len(before) {
		t.Fatalf("files before %d, after %d", len(before), len(after))
	}
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s changed by a refused init", name)
		}
	}
}

func TestInitRefusesInterruptedInit(t *testing.T) {
	for _, leftovers := range [][]string{
		{CAKeyFile},
		{CAKeyFile, CACertFile, SigningKeyFile},
		{CAKeyFile, CACertFile, SigningKeyFile, stagingStoreFile},
		{CAKeyFile, CACertFile, SigningKeyFile, SettingsKeyFile, stagingStoreFile},
	} {
		t.Run(strings.Join(leftovers, "+"), func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range leftovers {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("leftover "+name), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Init(context.Background(), InitOptions{DataDir: dir, Domain: "acme", PasswordCost: testCost})
			if err == nil || !strings.Contains(err.Error(), "interrupted") {
				t.Fatalf("err = %v, want an interrupted init explained", err)
			}
			for name, b := range readAll(t, dir) {
				if b != "leftover "+name {
					t.Errorf("%s created or changed by a refused init", name)
				}
			}
		})
	}
}

func TestInitRemovesWhatItWroteOnError(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the store refuses to start a transaction
	_, err := Init(ctx, InitOptions{DataDir: dir, Domain: "acme", PasswordCost: testCost})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if left := readAll(t, dir); len(left) != 0 {
		t.Errorf("failed init left %v", left)
	}
	initDomain(t, dir, "acme", "")
}

func TestInitRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, domain, password string
		cost                   int
		want                   string
	}{
		{"empty domain", "", "", testCost, "invalid domain name"},
		{"upper case", "Acme", "", testCost, "lowercase"},
		{"dot", "acme.example", "", testCost, "invalid domain name"},
		{"underscore", "ac_me", "", testCost, "invalid domain name"},
		{"leading hyphen", "-acme", "", testCost, "starting and ending"},
		{"trailing hyphen", "acme-", "", testCost, "starting and ending"},
		{"64 characters", strings.Repeat("a", 64), "", testCost, "1 to 63"},
		{"short password", "acme", "short", testCost, "admin password"},
		{"bad cost", "acme", "", 99, "admin password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := Init(context.Background(), InitOptions{DataDir: dir, Domain: tt.domain, Password: tt.password, PasswordCost: tt.cost})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data dir created by a refused init (stat: %v)", err)
			}
		})
	}
}

func TestValidateDomainName(t *testing.T) {
	for _, name := range []string{"a", "acme", "acme-prod", "0", "a1-b2", strings.Repeat("a", 63)} {
		if err := ValidateDomainName(name); err != nil {
			t.Errorf("ValidateDomainName(%q) = %v", name, err)
		}
	}
}
