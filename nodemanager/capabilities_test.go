package nodemanager

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestPluginsIn(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"sig": 0o755, "quota": 0o700, "notes.txt": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A link to an executable counts, as the gateway follows it.
	if err := os.Symlink(filepath.Join(dir, "sig"), filepath.Join(dir, "sig-link")); err != nil {
		t.Fatal(err)
	}
	got, err := pluginsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"quota", "sig", "sig-link"}; !reflect.DeepEqual(got, want) {
		t.Errorf("plugins %q, want %q", got, want)
	}
	got, err = pluginsIn(filepath.Join(dir, "missing"))
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("a missing directory: %q, %v; want an empty list", got, err)
	}
}

// The probe reads what the binary says of itself, and asks again when
// the file is replaced.
func TestGatewayProbe(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gatehouse")
	write := func(line string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(bin, []byte("#!/bin/sh\necho '"+line+"'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(bin, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	p := &gatewayProbe{binary: bin}
	at := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		line    string
		version string
		level   int
	}{
		{"gatehouse version 1.4.0 (configuration feature level 3)", "1.4.0", 3},
		{"gatehouse version 1.3.0", "1.3.0", 0},
		{"something else", "", 0},
	} {
		at = at.Add(time.Minute)
		write(tc.line, at)
		if v, l := p.get(context.Background()); v != tc.version || l != tc.level {
			t.Errorf("%q: got %q level %d, want %q level %d", tc.line, v, l, tc.version, tc.level)
		}
	}
	if v, l := (&gatewayProbe{binary: bin + "-missing"}).get(context.Background()); v != "" || l != 0 {
		t.Errorf("a missing binary: %q level %d", v, l)
	}
}
