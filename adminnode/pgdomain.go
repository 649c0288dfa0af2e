package adminnode

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/keybundle"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/adminnode/store/pgstore"
	"github.com/gatehouse/gatehouse/deploy"
)

// A domain kept in PostgreSQL: the database holds what admin.db would, and
// each admin node's data dir holds only the keys (and a marker), which
// reach a second admin node in a key bundle (Join, ExportKeys).

// postgresMarker is the content of PostgresMarkerFile.
const postgresMarker = "The domain of this admin node is kept in PostgreSQL: run it with\n" +
	"gatehouse admin run --store-file FILE (or GATEHOUSE_STORE, or --store).\n" +
	"This file holds no connection string.\n"

// openPostgres opens the store at dsn. No error it returns holds the
// connection string's password: the driver's own redaction is best effort,
// so a string that does not parse is not repeated at all, and the password
// is scrubbed from any other error.
func openPostgres(ctx context.Context, dsn string) (*pgstore.PG, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("invalid PostgreSQL connection string (not repeated here: it may hold a password)")
	}
	s, err := pgstore.Open(ctx, dsn)
	if err != nil && cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
		return nil, errors.New(strings.ReplaceAll(err.Error(), cfg.Password, "xxxxx"))
	}
	return s, err
}

// openEmptyPostgres opens the database a domain is to be created in,
// refusing one that already holds a domain.
func openEmptyPostgres(ctx context.Context, dsn string) (*pgstore.PG, error) {
	s, err := openPostgres(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("init domain: %w", err)
	}
	d, err := s.GetDomain(ctx)
	switch {
	case err == nil:
		s.Close()
		return nil, fmt.Errorf("the database already holds domain %s: init never overwrites one; "+
			"to add an admin node to it, use gatehouse admin init --join with a key bundle (docs/admin-node.md)", d.Name)
	case !errors.Is(err, store.ErrNotFound):
		s.Close()
		return nil, fmt.Errorf("init domain: read the database: %w", err)
	}
	return s, nil
}

// commitPostgres creates the domain in the database in one transaction,
// the commit point of an init with a store. When it fails, the database
// is asked what happened: nothing of the domain is there (Init then
// removes the key files it wrote in dir, so that init can simply be run
// again), or the domain is there after all (its commit's answer was
// lost: done), or another init's is. A database that no longer answers
// leaves the outcome unknown: keep is then set, and the key files, maybe
// the domain's only copy, stay.
func commitPostgres(ctx context.Context, s *pgstore.PG, dir string, seed store.DomainSeed) (keep bool, err error) {
	err = s.CreateDomain(ctx, seed)
	if err == nil {
		return false, nil
	}
	// Asked even when init is being cancelled: what it removes depends on
	// the answer.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	d, gerr := s.GetDomain(actx)
	switch {
	case gerr == nil && d.CACertPEM == seed.Domain.CACertPEM:
		return false, nil
	case gerr == nil:
		// Of two inits at once, the second's domain row waits on the
		// first's and finds it there.
		return false, fmt.Errorf("the database already holds domain %s (another init made it meanwhile): init never overwrites one", d.Name)
	case errors.Is(gerr, store.ErrNotFound):
		return false, fmt.Errorf("init domain in PostgreSQL: nothing was written to the database, and the key files are removed from %s: "+
			"once the cause is fixed, run the same init again: %w", dir, err)
	}
	return true, fmt.Errorf("init domain in PostgreSQL: %w; and the database does not answer whether it holds the domain now (%v). "+
		"The key files are kept in %s: once the database answers, if it holds domain %s, create %s there (its content does not matter) and run the admin node; "+
		"if it holds none, delete the files and run init again", err, gerr, dir, seed.Domain.Name, PostgresMarkerFile)
}

// markPostgres writes the marker of a data dir whose domain, committed in
// PostgreSQL, has its keys there.
func markPostgres(dir string) error {
	err := writeNew(filepath.Join(dir, PostgresMarkerFile), []byte(postgresMarker), 0o644)
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("domain created in PostgreSQL with its keys in %s, but its marker is not written (%w): create %s there (its content does not matter) before running the admin node",
			dir, err, PostgresMarkerFile)
	}
	return nil
}

// openDomainStore opens the store of the domain of dir: admin.db, or the
// PostgreSQL database at dsn when it is set. A data dir and a store that
// do not go together are refused, so that a forgotten or extra --store
// cannot serve an empty or another domain.
func openDomainStore(ctx context.Context, dir, dsn string) (store.Store, store.Domain, error) {
	found, err := existing(dir, []string{StoreFile, PostgresMarkerFile})
	if err != nil {
		return nil, store.Domain{}, err
	}
	has := func(name string) bool {
		return len(found) > 0 && (found[0] == name || len(found) > 1 && found[1] == name)
	}
	if dsn == "" {
		if !has(StoreFile) && has(PostgresMarkerFile) {
			return nil, store.Domain{}, fmt.Errorf("the domain of %s is kept in PostgreSQL: give its connection string (--store-file, GATEHOUSE_STORE or --store)", dir)
		}
		return openStore(ctx, dir)
	}
	switch {
	case has(StoreFile):
		return nil, store.Domain{}, fmt.Errorf("%s holds a domain in %s, not in PostgreSQL: run it without a store connection string", dir, StoreFile)
	case !has(PostgresMarkerFile):
		return nil, store.Domain{}, fmt.Errorf("no domain in %s: run gatehouse admin init --store first, or --join to add this admin node to a domain", dir)
	}
	s, err := openPostgres(ctx, dsn)
	if err != nil {
		return nil, store.Domain{}, err
	}
	d, err := s.GetDomain(ctx)
	if err != nil {
		s.Close()
		if errors.Is(err, store.ErrNotFound) {
			return nil, store.Domain{}, errors.New("the PostgreSQL database holds no domain: is the connection string the one init was given?")
		}
		return nil, store.Domain{}, fmt.Errorf("read domain: %w", err)
	}
	return s, d, nil
}

// ExportKeys reads the domain's keys from dir for a key bundle, checking
// that they belong together.
func ExportKeys(dir string) (keybundle.Keys, error) {
	files := map[string][]byte{}
	for _, name := range []string{CACertFile, CAKeyFile, SigningKeyFile, SettingsKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return keybundle.Keys{}, fmt.Errorf("export domain keys: %w", err)
		}
		files[name] = b
	}
	k := keybundle.Keys{
		CACertPEM: files[CACertFile], CAKeyPEM: files[CAKeyFile],
		SigningKeyPEM: files[SigningKeyFile], SettingsKey: files[SettingsKeyFile],
	}
	root, _, err := checkBundleKeys(k)
	if err != nil {
		return keybundle.Keys{}, fmt.Errorf("export domain keys from %s: %w", dir, err)
	}
	k.Domain = root.Domain()
	return k, nil
}

// checkBundleKeys parses the keys, so that a broken one is refused before
// it is written anywhere.
func checkBundleKeys(k keybundle.Keys) (*ca.CA, ed25519.PublicKey, error) {
	root, err := ca.Load(k.CACertPEM, k.CAKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("domain CA: %w", err)
	}
	key, err := decodeSigningKey(k.SigningKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("signing key: %w", err)
	}
	if _, err := seal.Parse(k.SettingsKey); err != nil {
		return nil, nil, err
	}
	return root, key.Public().(ed25519.PublicKey), nil
}

// JoinOptions are the inputs of Join.
type JoinOptions struct {
	DataDir string
	// Store is the connection string of the domain's PostgreSQL database.
	Store string
	// Bundle is the key bundle's content (gatehouse admin keys export),
	// opened with Passphrase.
	Bundle, Passphrase []byte
}

// Join makes DataDir the data dir of another admin node of the domain kept
// in the PostgreSQL database at Store: it writes the keys of the bundle
// there once they are checked to be the domain's — its CA certificate and
// its signing public key, as the database holds them. A bundle of another
// domain is refused with nothing written.
func Join(ctx context.Context, opts JoinOptions) (InitResult, error) {
	switch {
	case opts.DataDir == "":
		return InitResult{}, errors.New("join domain: no data dir")
	case opts.Store == "":
		return InitResult{}, errors.New("join domain: no PostgreSQL connection string: only a domain kept in PostgreSQL has several admin nodes")
	}
	keys, err := keybundle.Open(opts.Bundle, opts.Passphrase)
	if err != nil {
		return InitResult{}, fmt.Errorf("join domain: %w", err)
	}
	root, pub, err := checkBundleKeys(keys)
	if err != nil {
		return InitResult{}, fmt.Errorf("join domain: key bundle: %w", err)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return InitResult{}, fmt.Errorf("create data dir: %w", err)
	}
	if err := checkEmpty(opts.DataDir, false); err != nil {
		return InitResult{}, err
	}
	s, err := openPostgres(ctx, opts.Store)
	if err != nil {
		return InitResult{}, fmt.Errorf("join domain: %w", err)
	}
	defer s.Close()
	d, err := s.GetDomain(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return InitResult{}, fmt.Errorf("join domain %s: the database holds no domain: create it with gatehouse admin init --store on the first admin node", keys.Domain)
	case err != nil:
		return InitResult{}, fmt.Errorf("join domain: read the database: %w", err)
	}
	storedCA, err := ca.Fingerprint([]byte(d.CACertPEM))
	if err != nil {
		return InitResult{}, fmt.Errorf("domain %s: stored CA certificate: %w", d.Name, err)
	}
	if d.Name != root.Domain() || storedCA != root.Fingerprint() || !bytes.Equal(pub, d.SigningPublicKey) {
		return InitResult{}, fmt.Errorf("the key bundle is of domain %s (CA %s, signing key %s), the database holds domain %s (CA %s, signing key %s): refusing to join",
			root.Domain(), root.Fingerprint(), deploy.KeyFingerprint(pub), d.Name, storedCA, deploy.KeyFingerprint(d.SigningPublicKey))
	}

	files := append(domainKeyFiles(keys), dataFile{PostgresMarkerFile, []byte(postgresMarker), 0o644})
	if _, err := writeFiles(opts.DataDir, files); err != nil {
		return InitResult{}, fmt.Errorf("join domain: %w", err)
	}
	return InitResult{
		Domain:                d.Name,
		DataDir:               opts.DataDir,
		CAFingerprint:         root.Fingerprint(),
		SigningKeyFingerprint: deploy.KeyFingerprint(pub),
	}, nil
}
