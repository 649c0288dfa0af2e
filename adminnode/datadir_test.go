package adminnode

import (
	"os"
	"path/filepath"
	"testing"
)

// writeFiles writes every file with its mode, or, when one cannot be
// created, removes those it wrote and leaves the one in the way alone.
func TestWriteFiles(t *testing.T) {
	files := []dataFile{{"a", []byte("A"), 0o600}, {"b", []byte("B"), 0o644}, {"c", []byte("C"), 0o600}}
	for _, tc := range []struct {
		name string
		// existing is a file already in the directory.
		existing string
		wantErr  bool
	}{
		{"empty directory", "", false},
		{"the first in the way", "a", true},
		{"the last in the way", "c", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.existing != "" {
				if err := os.WriteFile(filepath.Join(dir, tc.existing), []byte("theirs"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			created, err := writeFiles(dir, files)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			for _, f := range files {
				path := filepath.Join(dir, f.name)
				data, rerr := os.ReadFile(path)
				switch {
				case f.name == tc.existing:
					if string(data) != "theirs" {
						t.Errorf("%s in the way became %q", f.name, data)
					}
				case tc.wantErr:
					if rerr == nil {
						t.Errorf("%s left after the error", f.name)
					}
				default:
					fi, serr := os.Stat(path)
					if serr != nil || string(data) != string(f.data) || fi.Mode().Perm() != f.mode {
						t.Errorf("%s: %q %v %v, want %q mode %v", f.name, data, fi, serr, f.data, f.mode)
					}
				}
			}
			if want := map[bool]int{false: len(files), true: 0}[tc.wantErr]; len(created) != want {
				t.Errorf("returned %d paths, want %d", len(created), want)
			}
		})
	}
}
