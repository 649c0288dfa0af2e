package readyfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Addrs names each bound address ("listen" → "127.0.0.1:40123").
type Addrs = map[string]string

// Write writes addrs to path as a JSON object, atomically: a temporary
// file in the same directory renamed over path, so that a reader polling
// for the file never sees half of it.
func Write(path string, addrs Addrs) error {
	data, err := json.Marshal(addrs)
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("ready file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("ready file %s: %w", path, err)
	}
	// Readable by the user who starts the process and the tools they run
	// (CreateTemp makes it 0600); it holds addresses only.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("ready file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ready file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("ready file %s: %w", path, err)
	}
	return nil
}

// Hook is the callback a process calls with its bound addresses: it
// writes them to path, or does nothing when path is empty.
func Hook(path string) func(Addrs) error {
	return func(a Addrs) error {
		if path == "" {
			return nil
		}
		return Write(path, a)
	}
}

// Read reads a ready file; os.ErrNotExist (wrapped) while the process has
// not written it yet.
func Read(path string) (Addrs, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ready file: %w", err)
	}
	var a Addrs
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("ready file %s: %w", path, err)
	}
	return a, nil
}
