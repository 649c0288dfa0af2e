package nodemanager

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// DefaultReleasesKept is how many gateway releases a node manager keeps
// beside the ones its instances run.
const DefaultReleasesKept = 3

// releaseFetcher is what the release cache needs of the admin node.
type releaseFetcher interface {
	AgentRelease(ctx context.Context, version string, consume func(sha256Hex string, body io.Reader) error) error
}

// releases keeps the gateway releases the host's instances run, under
// DATA_DIR/releases/VERSION-SHA/gatehouse: downloaded over the agent
// channel, kept only when the SHA-256 is the one the domain key signed
// (docs/upgrades.md).
type releases struct {
	dir   string
	key   ed25519.PublicKey
	admin releaseFetcher
	keep  int
	log   hclog.Logger

	mu sync.Mutex
	// verified holds the paths checked since the start: a binary is
	// hashed once per node manager run, not at every reconcile.
	verified map[string]bool
	// desired holds the release directories the desired instances run.
	desired map[string]bool
}

func newReleases(dir string, key ed25519.PublicKey, admin releaseFetcher, log hclog.Logger) *releases {
	return &releases{dir: dir, key: key, admin: admin, keep: DefaultReleasesKept, log: log,
		verified: map[string]bool{}}
}

func (r *releases) path(rel *apitypes.AgentRelease) string {
	return filepath.Join(r.dir, rel.Version+"-"+rel.SHA256[:min(16, len(rel.SHA256))], "gatehouse")
}

// ensure returns the path of rel's binary, downloading it if need be. The
// signature is checked first, then the SHA-256 of the bytes.
func (r *releases) ensure(ctx context.Context, rel *apitypes.AgentRelease) (string, error) {
	if len(r.key) != ed25519.PublicKeySize || !ed25519.Verify(r.key, apitypes.ReleaseMessage(rel.Version, rel.SHA256), rel.Signature) {
		return "", fmt.Errorf("release %s: the signature does not verify with the domain key", rel.Version)
	}
	p := r.path(rel)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.verified[p] {
		return p, nil
	}
	if sum, err := fileSHA256(p); err == nil {
		if sum == rel.SHA256 {
			r.verified[p] = true
			return p, nil
		}
		r.log.Warn("release on disk does not match its checksum: downloading it again", "release", rel.Version, "path", p)
	}
	if err := r.download(ctx, rel, p); err != nil {
		return "", err
	}
	r.verified[p] = true
	r.prune(filepath.Dir(p))
	return p, nil
}

func (r *releases) download(ctx context.Context, rel *apitypes.AgentRelease, p string) error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("release %s: %w", rel.Version, err)
	}
	tmp, err := os.MkdirTemp(r.dir, ".download-")
	if err != nil {
		return fmt.Errorf("release %s: %w", rel.Version, err)
	}
	defer os.RemoveAll(tmp)
	f, err := os.OpenFile(filepath.Join(tmp, "gatehouse"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fmt.Errorf("release %s: %w", rel.Version, err)
	}
	h := sha256.New()
	err = r.admin.AgentRelease(ctx, rel.Version, func(announced string, body io.Reader) error {
		if announced != rel.SHA256 {
			return fmt.Errorf("the admin node serves sha256 %s, the signed one is %s", announced, rel.SHA256)
		}
		_, err := io.Copy(io.MultiWriter(f, h), body)
		return err
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download release %s: %w", rel.Version, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != rel.SHA256 {
		return fmt.Errorf("release %s: downloaded sha256 %s, the signed one is %s", rel.Version, got, rel.SHA256)
	}
	os.RemoveAll(filepath.Dir(p))
	if err := os.Rename(tmp, filepath.Dir(p)); err != nil {
		return fmt.Errorf("release %s: %w", rel.Version, err)
	}
	if err := os.Chmod(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("release %s: %w", rel.Version, err)
	}
	r.log.Info("release downloaded and verified", "release", rel.Version, "sha256", rel.SHA256, "path", p)
	return nil
}

// prune removes the oldest release directories beyond keep, never the
// one just fetched nor one the desired instances run (desired).
func (r *releases) prune(fresh string) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return
	}
	type dir struct {
		path string
		mod  int64
	}
	var dirs []dir
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(r.dir, e.Name())
		if p == fresh || r.desired[p] {
			continue
		}
		if fi, err := e.Info(); err == nil {
			dirs = append(dirs, dir{p, fi.ModTime().UnixNano()})
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].mod > dirs[j].mod })
	for i, d := range dirs {
		if i+1 < r.keep {
			continue
		}
		if err := os.RemoveAll(d.path); err != nil {
			r.log.Warn("cannot remove an old release", "path", d.path, "error", err)
			continue
		}
		for p := range r.verified {
			if filepath.Dir(p) == d.path {
				delete(r.verified, p)
			}
		}
		r.log.Info("old release removed", "path", d.path)
	}
}

// want records the release directories the desired instances run, which
// prune keeps.
func (r *releases) want(paths []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.desired = map[string]bool{}
	for _, p := range paths {
		r.desired[filepath.Dir(p)] = true
	}
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
