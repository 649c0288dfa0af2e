package nodemanager

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// localTokenBytes is the size of the local API's operator token before it
// is written in hex.
const localTokenBytes = 32

// loadLocalToken returns the operator token of the local API kept in
// dir/local-api.token, making it on the first run. The file is the
// credential: whoever can read it may restart gateways, so a file that
// others may read or write is refused rather than used. created says
// whether this call made it.
func loadLocalToken(dir string) (token string, created bool, err error) {
	path := filepath.Join(dir, localapi.TokenFile)
	token, err = readLocalToken(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return token, false, err
	}
	if err := createLocalToken(path); err != nil {
		return "", false, err
	}
	token, err = readLocalToken(path)
	return token, err == nil, err
}

func readLocalToken(path string) (string, error) {
	// Lstat: the token must be a file of the data dir, not a link to one
	// elsewhere whose mode says nothing of who else reads it.
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("local API token: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("local API token %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("local API token %s: mode %04o lets other users read or change it; it must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("local API token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if _, err := hex.DecodeString(token); err != nil || len(token) != 2*localTokenBytes {
		return "", fmt.Errorf("local API token %s: want %d hex digits; remove the file and the next start makes a new token", path, 2*localTokenBytes)
	}
	return token, nil
}

// createLocalToken writes a new random token to path through a temporary
// file linked into place: a reader never sees half a token, and a token
// made meanwhile by another start is kept, not replaced.
func createLocalToken(path string) error {
	var b [localTokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("make local API token: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("make local API token: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name)
	_, err = tmp.WriteString(hex.EncodeToString(b[:]) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(name, path)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("make local API token %s: %w", path, err)
	}
	return nil
}
