package adminnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/keybundle"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/adminnode/store/pgstore"
	"github.com/gatehouse/gatehouse/deploy"
)

// AdminUser is the first administrator, created by Init.
const AdminUser = "admin"

// domainName is stricter than the CA's object-name rule: the domain name
// ends up in DNS-like places (certificate names, URIs, host labels), so it
// follows the DNS label rule.
var domainName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateDomainName applies the domain name rule.
func ValidateDomainName(name string) error {
	if !domainName.MatchString(name) {
		return fmt.Errorf("invalid domain name %q: must be 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// InitOptions are the inputs of Init.
type InitOptions struct {
	DataDir string
	Domain  string
	// Store is the connection string of a PostgreSQL database to create
	// the domain in; empty keeps it in DataDir (admin.db, bbolt). The keys
	// are in DataDir either way.
	Store string
	// Password is the admin user's; empty generates one.
	Password string
	// PasswordCost is the bcrypt cost (auth.DefaultPasswordCost when 0).
	PasswordCost int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// InitResult is what the operator needs to hear once after Init.
type InitResult struct {
	Domain  string
	DataDir string
	// CAFingerprint is what node managers pin (ca.Fingerprint form).
	CAFingerprint string
	// SigningKeyFingerprint identifies the key deployments are signed with
	// (deploy.KeyFingerprint form).
	SigningKeyFingerprint string
	User                  string
	// Password is set only when Init generated it: it is shown once and
	// stored only as a hash.
	Password string
}

// Init creates a domain in opts.DataDir: its CA, its signing key, the key
// its environments' secrets are sealed with and its store with the
// built-in roles and the admin user.
//
// The store is the commit point. The key files are written first, each
// created exclusively, so that of two concurrent inits one fails there;
// the store is built complete under a staging name and renamed to admin.db
// last. A crash at any point therefore leaves either a whole domain or key
// files without admin.db, which Init refuses with an explanation and Run
// reports as no domain; nothing is ever overwritten. On an error short of
// a crash, Init removes what it wrote.
//
// With opts.Store, the database's transaction is the commit point
// instead: the whole domain is created in it at once or not at all, after
// the key files, and the data dir is marked (PostgresMarkerFile) after
// it. A failure before the commit leaves no domain in the database and,
// short of a crash, no file in the data dir, so the same init can be run
// again.
func Init(ctx context.Context, opts InitOptions) (res InitResult, err error) {
	if opts.DataDir == "" {
		return InitResult{}, errors.New("init domain: no data dir")
	}
	if err := ValidateDomainName(opts.Domain); err != nil {
		return InitResult{}, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PasswordCost == 0 {
		opts.PasswordCost = auth.DefaultPasswordCost
	}
	password, generated := opts.Password, ""
	if password == "" {
		if password, err = auth.GeneratePassword(); err != nil {
			return InitResult{}, err
		}
		generated = password
	} else if err := auth.ValidatePassword(password); err != nil {
		return InitResult{}, fmt.Errorf("admin password: %w", err)
	}
	// Hashing before touching the disk: a bad cost fails with nothing
	// written.
	hash, err := auth.HashPassword(password, opts.PasswordCost)
	if err != nil {
		return InitResult{}, fmt.Errorf("admin password: %w", err)
	}

	now := opts.Now()
	root, err := ca.New(opts.Domain, now)
	if err != nil {
		return InitResult{}, fmt.Errorf("create domain CA: %w", err)
	}
	certPEM, keyPEM, err := root.PEM()
	if err != nil {
		return InitResult{}, fmt.Errorf("create domain CA: %w", err)
	}
	pub, priv, err := deploy.GenerateSigningKey()
	if err != nil {
		return InitResult{}, err
	}
	signingPEM, err := encodeSigningKey(priv)
	if err != nil {
		return InitResult{}, err
	}
	result := InitResult{
		Domain:                opts.Domain,
		DataDir:               opts.DataDir,
		CAFingerprint:         root.Fingerprint(),
		SigningKeyFingerprint: deploy.KeyFingerprint(pub),
		User:                  AdminUser,
		Password:              generated,
	}

	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return InitResult{}, fmt.Errorf("create data dir: %w", err)
	}
	var pg *pgstore.PG
	if opts.Store != "" {
		// The database is checked before anything is written: a database
		// that already holds a domain is joined, never initialised again;
		// and key files found without a domain in it are then certainly
		// the remains of an init that never committed.
		if pg, err = openEmptyPostgres(ctx, opts.Store); err != nil {
			return InitResult{}, err
		}
		defer pg.Close()
	}
	if err := checkEmpty(opts.DataDir, pg != nil); err != nil {
		return InitResult{}, err
	}
	var created []string
	defer func() {
		if err != nil {
			for _, p := range created {
				os.Remove(p)
			}
		}
	}()
	keys := keybundle.Keys{CACertPEM: certPEM, CAKeyPEM: keyPEM, SigningKeyPEM: signingPEM, SettingsKey: seal.NewKeyFile()}
	if created, err = writeFiles(opts.DataDir, domainKeyFiles(keys)); err != nil {
		return InitResult{}, fmt.Errorf("init domain: %w", err)
	}

	seed := domainSeed(store.Domain{
		Name:             opts.Domain,
		CreatedAt:        now,
		SigningPublicKey: pub,
		CACertPEM:        string(certPEM),
	}, hash, now)
	if pg != nil {
		if keep, err := commitPostgres(ctx, pg, opts.DataDir, seed); err != nil {
			if keep {
				created = nil
			}
			return InitResult{}, err
		}
		// Committed: the key files are the domain's now, kept whatever
		// follows.
		created = nil
		if err := markPostgres(opts.DataDir); err != nil {
			return InitResult{}, err
		}
		return result, nil
	}
	staging := filepath.Join(opts.DataDir, stagingStoreFile)
	created = append(created, staging)
	err = populate(ctx, staging, seed)
	if err != nil {
		return InitResult{}, fmt.Errorf("init domain: %w", err)
	}
	// Renaming cannot clobber another init's store: that init would have
	// had to create ca.key, which our exclusive create above refused.
	if err := os.Rename(staging, filepath.Join(opts.DataDir, StoreFile)); err != nil {
		return InitResult{}, fmt.Errorf("init domain: commit store: %w", err)
	}
	created = nil
	if err := syncDir(opts.DataDir); err != nil {
		return InitResult{}, err
	}
	return result, nil
}

// populate creates the store at path with seed.
func populate(ctx context.Context, path string, seed store.DomainSeed) (err error) {
	s, err := store.Open(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	}()
	return store.Seed(ctx, s, seed)
}

// domainSeed is what init writes of domain d: its record, the built-in
// roles, the admin user bound to domain-admin over the whole domain, and
// the audit entry of the init.
func domainSeed(d store.Domain, passwordHash string, now time.Time) store.DomainSeed {
	return store.DomainSeed{
		Domain: d,
		Roles:  rbac.BuiltInRoles(),
		Users:  []store.User{{Name: AdminUser, PasswordHash: passwordHash, CreatedAt: now}},
		Bindings: []store.RoleBinding{{
			User:      AdminUser,
			Role:      rbac.RoleDomainAdmin,
			Scope:     store.Scope{Domain: true},
			CreatedAt: now,
		}},
		Audit: []store.AuditEntry{{
			Time:   now,
			User:   AdminUser,
			Action: "domain.init",
			Target: d.Name,
			Result: store.AuditOK,
			// Not an API call: made on the machine, by whoever ran init.
			Source: "local",
		}},
	}
}
