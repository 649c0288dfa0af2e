package adminnode

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/keybundle"
)

// Files of a data directory (docs/admin-node.md).
const (
	StoreFile      = "admin.db"
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	SigningKeyFile = "signing.key"
	// SettingsKeyFile seals the environments' secrets (adminnode/seal).
	SettingsKeyFile = "settings.key"

	// PostgresMarkerFile marks a data dir whose domain is kept in
	// PostgreSQL: it holds no connection string (that may hold a password),
	// only a note for the operator, and lets init and run tell such a data
	// dir from the remains of an interrupted init.
	PostgresMarkerFile = "store.postgres"

	// stagingStoreFile is where Init builds the store before linking it to
	// StoreFile; a leftover one marks an interrupted init.
	stagingStoreFile = StoreFile + ".init"
)

// keyFiles are what Init writes before the store; any of them without the
// store is the trace of an interrupted init.
var keyFiles = []string{CAKeyFile, CACertFile, SigningKeyFile, SettingsKeyFile, stagingStoreFile}

// existing returns which of names exist in dir, in the order given.
func existing(dir string, names []string) ([]string, error) {
	var found []string
	for _, n := range names {
		_, err := os.Lstat(filepath.Join(dir, n))
		switch {
		case err == nil:
			found = append(found, n)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("inspect data dir %s: %w", dir, err)
		}
	}
	return found, nil
}

// checkEmpty refuses a data dir that holds a domain or the remains of one.
// The store is not opened: opening upgrades its schema, and a refused init
// must change nothing. inEmptyPostgres says that the domain is to be
// created in a PostgreSQL database found to hold none: key files are then
// what an init stopped before its commit left, of no domain.
func checkEmpty(dir string, inEmptyPostgres bool) error {
	found, err := existing(dir, append([]string{StoreFile, PostgresMarkerFile}, keyFiles...))
	if err != nil || len(found) == 0 {
		return err
	}
	if found[0] == StoreFile || found[0] == PostgresMarkerFile {
		return fmt.Errorf("data dir %s already holds a domain (found %s); init never overwrites one: choose another --data-dir, or move this one away",
			dir, strings.Join(found, ", "))
	}
	if inEmptyPostgres {
		return fmt.Errorf("data dir %s holds %s but no %s, and the database holds no domain: an earlier init was stopped before it created the domain in the database, "+
			"and nothing of it is in use. Delete these files and run init again", dir, strings.Join(found, ", "), PostgresMarkerFile)
	}
	return fmt.Errorf("data dir %s holds %s but no %s: an earlier init was interrupted before it finished, and nothing of it is in use. "+
		"Unless you removed %s yourself (then restore it from a backup instead), delete these files and run init again",
		dir, strings.Join(found, ", "), StoreFile, StoreFile)
}

// writeNew writes a new file at path with exactly mode (the umask does not
// apply: ca.crt is meant to be readable by all), synced to disk. It fails
// rather than replace an existing file.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// dataFile is a file of a data dir to write.
type dataFile struct {
	name string
	data []byte
	mode os.FileMode
}

// domainKeyFiles are the files of the domain's keys k.
func domainKeyFiles(k keybundle.Keys) []dataFile {
	return []dataFile{
		{CAKeyFile, k.CAKeyPEM, 0o600},
		{CACertFile, k.CACertPEM, 0o644},
		{SigningKeyFile, k.SigningKeyPEM, 0o600},
		{SettingsKeyFile, k.SettingsKey, 0o600},
	}
}

// writeFiles writes files into dir in order, each created exclusively and
// synced, then syncs dir. On an error it removes those it created;
// otherwise it returns their paths, for the caller to remove should a
// later step fail.
func writeFiles(dir string, files []dataFile) (created []string, err error) {
	defer func() {
		if err != nil {
			for _, p := range created {
				os.Remove(p)
			}
			created = nil
		}
	}()
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data, f.mode); err != nil {
			return created, err
		}
		created = append(created, path)
	}
	return created, syncDir(dir)
}

// syncDir makes the directory entries created in dir durable, so that a
// crash cannot leave the store linked but a key file's name lost.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync data dir %s: %w", dir, err)
	}
	return nil
}

// encodeSigningKey stores the domain's ed25519 key as PKCS#8 in a PEM
// "PRIVATE KEY" block, the form the CA key has and openssl reads.
func encodeSigningKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func decodeSigningKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PKCS#8 PRIVATE KEY PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an ed25519 key", parsed)
	}
	return key, nil
}
