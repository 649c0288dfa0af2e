package adminnode

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/backup"
	"github.com/gatehouse/gatehouse/adminnode/keybundle"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/backupfile"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/objstore"
)

// restoreStagingFile is where a restore builds admin.db before renaming
// it: a crash or a refused backup never leaves a half-restored admin.db.
const restoreStagingFile = StoreFile + ".restore"

// RestoreOptions are the inputs of Restore.
type RestoreOptions struct {
	// From is the URL of one backup object: file:///dir/NAME.ghbackup or
	// s3://bucket/prefix/NAME.ghbackup.
	From string
	// Bucket is what object storage needs beyond the URL (credentials).
	Bucket  objstore.Options
	DataDir string
	// Store is the connection string of an empty PostgreSQL database to
	// restore into; "" restores into admin.db in DataDir.
	Store string
	// Bundle, when set, is a key bundle (gatehouse admin keys export),
	// opened with Passphrase, whose keys are written to an empty DataDir.
	// Without it, DataDir must already hold the domain's key files (ca.crt,
	// ca.key, signing.key, settings.key) and no store.
	Bundle, Passphrase []byte
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Summary backupfile.Summary
	DataDir string
	// Postgres is true when the domain was restored into PostgreSQL.
	Postgres bool
}

// Restore makes DataDir the data dir of the domain a backup holds, its
// store filled from the backup: admin.db, or the empty PostgreSQL database
// at Store. The backup must be of the domain whose keys DataDir holds (or
// the bundle carries), signed by its signing key and unedited; a store
// that holds anything is refused. Nothing is left behind by a refusal: the
// bbolt store is built under a staging name and renamed last, and the
// PostgreSQL one in one transaction.
func Restore(ctx context.Context, opts RestoreOptions) (res RestoreResult, err error) {
	if opts.DataDir == "" {
		return RestoreResult{}, errors.New("restore: no data dir")
	}
	bucketURL, key, err := splitObjectURL(opts.From)
	if err != nil {
		return RestoreResult{}, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return RestoreResult{}, fmt.Errorf("create data dir: %w", err)
	}
	keys, err := restoreKeys(opts)
	if err != nil {
		return RestoreResult{}, err
	}
	signing, err := decodeSigningKey(keys.SigningKeyPEM)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore: signing key: %w", err)
	}
	want := backupfile.Expect{Domain: keys.Domain, Key: signing.Public().(ed25519.PublicKey)}

	bucket, err := objstore.Open(ctx, bucketURL, opts.Bucket)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	body, err := bucket.Get(ctx, key)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore: read backup %s from %s: %w", key, bucket, err)
	}
	defer body.Close()

	var created []string
	defer func() {
		if err != nil {
			for _, p := range created {
				os.Remove(p)
			}
		}
	}()
	if opts.Bundle != nil {
		paths, err := writeKeys(opts.DataDir, keys)
		created = append(created, paths...)
		if err != nil {
			return RestoreResult{}, fmt.Errorf("restore: %w", err)
		}
	}
	res = RestoreResult{DataDir: opts.DataDir, Postgres: opts.Store != ""}
	if opts.Store != "" {
		res.Summary, err = restorePostgres(ctx, opts.Store, body, want)
		if err != nil {
			return RestoreResult{}, err
		}
		if err := writeNew(filepath.Join(opts.DataDir, PostgresMarkerFile), []byte(postgresMarker), 0o644); err != nil {
			return RestoreResult{}, fmt.Errorf("restore: %w", err)
		}
		return res, syncDir(opts.DataDir)
	}
	staging := filepath.Join(opts.DataDir, restoreStagingFile)
	if err := os.Remove(staging); err != nil && !errors.Is(err, os.ErrNotExist) {
		return RestoreResult{}, fmt.Errorf("restore: remove the remains of an earlier restore: %w", err)
	}
	created = append(created, staging)
	if res.Summary, err = restoreBolt(ctx, staging, body, want); err != nil {
		return RestoreResult{}, err
	}
	// A concurrent init or restore of this data dir would have failed on
	// the exclusive key files, or on the check below: link, not rename,
	// so that an admin.db that appeared meanwhile is never replaced.
	if err := os.Link(staging, filepath.Join(opts.DataDir, StoreFile)); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: commit store: %w", err)
	}
	os.Remove(staging)
	created = nil
	return res, syncDir(opts.DataDir)
}

// splitObjectURL splits the URL of an object into its bucket's URL and
// its key (the last path segment).
func splitObjectURL(raw string) (string, string, error) {
	i := strings.LastIndex(raw, "/")
	if raw == "" || i < 0 || i == len(raw)-1 || !strings.Contains(raw, "://") || i < strings.Index(raw, "://")+3 {
		return "", "", fmt.Errorf("--from %q: give the URL of one backup, file:///dir/NAME%s or s3://bucket/prefix/NAME%s", raw, backupfile.Suffix, backupfile.Suffix)
	}
	return raw[:i], raw[i+1:], nil
}

// restoreKeys returns the domain's keys: the bundle's, for an empty data
// dir, or the data dir's own, for one that holds the keys and no store.
func restoreKeys(opts RestoreOptions) (keybundle.Keys, error) {
	dir := opts.DataDir
	if opts.Bundle != nil {
		keys, err := keybundle.Open(opts.Bundle, opts.Passphrase)
		if err != nil {
			return keybundle.Keys{}, fmt.Errorf("restore: %w", err)
		}
		if _, _, err := checkBundleKeys(keys); err != nil {
			return keybundle.Keys{}, fmt.Errorf("restore: key bundle: %w", err)
		}
		if err := checkEmpty(dir, false); err != nil {
			return keybundle.Keys{}, fmt.Errorf("restore with a key bundle needs an empty data dir: %w", err)
		}
		return keys, nil
	}
	found, err := existing(dir, []string{StoreFile, PostgresMarkerFile, stagingStoreFile})
	if err != nil {
		return keybundle.Keys{}, err
	}
	if len(found) > 0 {
		return keybundle.Keys{}, fmt.Errorf("data dir %s already holds a domain or the remains of an init (%s): restore never overwrites one; "+
			"restore into a data dir that holds only the domain's key files, or an empty one with --keys", dir, strings.Join(found, ", "))
	}
	keys, err := ExportKeys(dir)
	if err != nil {
		return keybundle.Keys{}, fmt.Errorf("restore needs the domain's keys: copy ca.crt, ca.key, signing.key and settings.key of the domain into %s, "+
			"or give a key bundle with --keys (gatehouse admin keys export): %w", dir, err)
	}
	return keys, nil
}

// writeKeys writes the bundle's keys to dir, returning what it created.
func writeKeys(dir string, keys keybundle.Keys) ([]string, error) {
	var created []string
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CAKeyFile, keys.CAKeyPEM, 0o600},
		{CACertFile, keys.CACertPEM, 0o644},
		{SigningKeyFile, keys.SigningKeyPEM, 0o600},
		{SettingsKeyFile, keys.SettingsKey, 0o600},
	} {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data, f.mode); err != nil {
			return created, err
		}
		created = append(created, path)
	}
	return created, syncDir(dir)
}

func restoreBolt(ctx context.Context, path string, body io.Reader, want backupfile.Expect) (res backupfile.Summary, err error) {
	s, err := store.Open(path)
	if err != nil {
		return backupfile.Summary{}, fmt.Errorf("restore: %w", err)
	}
	defer func() {
		if cerr := s.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("restore: close store: %w", cerr)
		}
	}()
	return restoreInto(ctx, s, body, want)
}

func restorePostgres(ctx context.Context, dsn string, body io.Reader, want backupfile.Expect) (backupfile.Summary, error) {
	s, err := openPostgres(ctx, dsn)
	if err != nil {
		return backupfile.Summary{}, fmt.Errorf("restore: %w", err)
	}
	defer s.Close()
	res, err := restoreInto(ctx, s, body, want)
	if errors.Is(err, store.ErrExists) {
		return backupfile.Summary{}, fmt.Errorf("the PostgreSQL database is not empty: restore only fills an empty one, and changed nothing: %w", err)
	}
	return res, err
}

// restoreInto restores and names the backup's domain and key in errors.
func restoreInto(ctx context.Context, s store.Store, body io.Reader, want backupfile.Expect) (backupfile.Summary, error) {
	res, err := backup.Restore(ctx, body, s, want)
	switch {
	case errors.Is(err, backupfile.ErrForeign):
		return backupfile.Summary{}, fmt.Errorf("%w; the keys given are of domain %s (signing key %s): refusing a backup of another domain",
			err, want.Domain, deploy.KeyFingerprint(want.Key))
	case errors.Is(err, backupfile.ErrTampered):
		return backupfile.Summary{}, fmt.Errorf("%w; nothing was restored", err)
	}
	return res, err
}
