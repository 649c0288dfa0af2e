package nodemanager

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// fakeReleases serves binaries by version, announcing a SHA-256 that may
// lie.
type fakeReleases struct {
	bins      map[string][]byte
	announce  map[string]string
	downloads atomic.Int32
}

func (f *fakeReleases) AgentRelease(_ context.Context, version string, consume func(string, io.Reader) error) error {
	f.downloads.Add(1)
	b := f.bins[version]
	sum := sha256.Sum256(b)
	a := hex.EncodeToString(sum[:])
	if s, ok := f.announce[version]; ok {
		a = s
	}
	return consume(a, bytes.NewReader(b))
}

func signedRelease(key ed25519.PrivateKey, version string, bin []byte) *apitypes.AgentRelease {
	sum := sha256.Sum256(bin)
	h := hex.EncodeToString(sum[:])
	return &apitypes.AgentRelease{Version: version, SHA256: h, Signature: ed25519.Sign(key, apitypes.ReleaseMessage(version, h))}
}

// TestReleases: a release runs only if the domain key signed its
// checksum and the bytes downloaded have it; one on disk is not fetched
// again; the oldest beyond the ones kept go.
func TestReleases(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	f := &fakeReleases{bins: map[string][]byte{}, announce: map[string]string{}}
	for _, v := range []string{"1", "2", "3", "4", "5", "bad"} {
		f.bins[v] = []byte("#!/bin/sh\necho release " + v + "\n")
	}
	dir := t.TempDir()
	r := newReleases(dir, pub, f, hclog.NewNullLogger())
	ctx := context.Background()

	tests := []struct {
		name    string
		rel     *apitypes.AgentRelease
		setup   func()
		errText string
	}{
		{name: "signed by another key", rel: signedRelease(otherKey, "1", f.bins["1"]), errText: "does not verify with the domain key"},
		{name: "signature of other bytes", rel: func() *apitypes.AgentRelease {
			rel := signedRelease(key, "1", f.bins["1"])
			rel.SHA256 = strings.Repeat("0", 64)
			return rel
		}(), errText: "does not verify"},
		{name: "admin node announces another checksum", rel: signedRelease(key, "bad", f.bins["bad"]),
			setup: func() { f.announce["bad"] = strings.Repeat("a", 64) }, errText: "the admin node serves sha256"},
		{name: "bytes differ from the signed checksum", rel: signedRelease(key, "bad", []byte("what was signed")),
			setup: func() { delete(f.announce, "bad") }, errText: "the admin node serves sha256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			p, err := r.ensure(ctx, tc.rel)
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Fatalf("ensure: %q, %v; want an error saying %q", p, err, tc.errText)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused releases left files: %v", ents)
	}

	p1, err := r.ensure(ctx, signedRelease(key, "1", f.bins["1"]))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p1); err != nil || !bytes.Equal(b, f.bins["1"]) {
		t.Fatalf("release 1 on disk: %q, %v", b, err)
	}
	if fi, _ := os.Stat(p1); fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("release 1 is not executable: %v", fi.Mode())
	}
	n := f.downloads.Load()
	// A new node manager (no memory of what it checked) finds it on disk.
	r2 := newReleases(dir, pub, f, hclog.NewNullLogger())
	if p, err := r2.ensure(ctx, signedRelease(key, "1", f.bins["1"])); err != nil || p != p1 {
		t.Fatalf("release 1 again: %q, %v", p, err)
	}
	if f.downloads.Load() != n {
		t.Error("a release on disk was downloaded again")
	}

	// Release 1 is desired; 2 to 5 come: 3 are kept beside it, 2 goes.
	r.want([]string{p1})
	for _, v := range []string{"2", "3", "4", "5"} {
		if _, err := r.ensure(ctx, signedRelease(key, v, f.bins[v])); err != nil {
			t.Fatal(err)
		}
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, strings.SplitN(e.Name(), "-", 2)[0])
	}
	if strings.Join(left, ",") != "1,3,4,5" {
		t.Errorf("releases kept: %v, want 1 (desired), then 3, 4 and 5 (the newest)", left)
	}
	if _, err := os.Stat(filepath.Join(dir, ".download-x")); err == nil {
		t.Error("a download directory was left")
	}
}
