package pubseal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// keyFile is the file a standalone gateway reads its domain's publish keys
// from (gateway --config-key): the domain, which sealed objects are bound
// to, and its keys, the one sealing first.
type keyFile struct {
	Domain string   `json:"domain"`
	Keys   [][]byte `json:"keys"`
}

// maxKeyFile bounds what is read of a key file.
const maxKeyFile = 64 << 10

// WriteKeyFile writes a new key file at path, mode 0600; it refuses to
// replace an existing file.
func WriteKeyFile(path, domain string, keys []*Key) error {
	if domain == "" || len(keys) == 0 {
		return errors.New("publish key file: no domain or no key")
	}
	kf := keyFile{Domain: domain}
	for _, k := range keys {
		kf.Keys = append(kf.Keys, k.Bytes())
	}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("publish key file: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("publish key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("publish key file %s: %w", path, err)
	}
	return nil
}

// ReadKeyFile reads a key file WriteKeyFile wrote, and returns the domain
// and its keys. The file must be a regular file readable by its owner
// only: the keys open every published deployment of the domain.
func ReadKeyFile(path string) (string, []*Key, error) {
	// Lstat: a link's mode says nothing of who reads the file it names.
	fi, err := os.Lstat(path)
	if err != nil {
		return "", nil, fmt.Errorf("publish key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", nil, fmt.Errorf("publish key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", nil, fmt.Errorf("publish key file %s: mode %04o lets other users read or change it; it must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("publish key file: %w", err)
	}
	defer f.Close()
	var kf keyFile
	// A file cut at the limit does not parse: a huge one is refused.
	dec := json.NewDecoder(io.LimitReader(f, maxKeyFile))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		// Not quoted: the parser's message could hold part of a key.
		return "", nil, fmt.Errorf("publish key file %s: not a key file written by gatehouse publish-key export", path)
	}
	if kf.Domain == "" {
		return "", nil, fmt.Errorf("publish key file %s: no domain", path)
	}
	if len(kf.Keys) == 0 {
		return "", nil, fmt.Errorf("publish key file %s: no key", path)
	}
	keys, err := ParseKeys(kf.Keys)
	if err != nil {
		return "", nil, fmt.Errorf("publish key file %s: %w", path, err)
	}
	return kf.Domain, keys, nil
}
