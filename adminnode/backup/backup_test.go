package backup_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/backup"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/backupfile"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/objstore"
)

var ctx = context.Background()

func openBolt(t *testing.T) *store.Bolt {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// domainStore is a store of domain acme signed by key, with a group, a
// deployment and audit entries.
func domainStore(t *testing.T, key ed25519.PrivateKey) *store.Bolt {
	t.Helper()
	s := openBolt(t)
	if err := s.InitDomain(ctx, store.Domain{Name: "acme", SigningPublicKey: key.Public().(ed25519.PublicKey)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	cfg := deploy.Config{Upstreams: []deploy.Upstream{{Name: "up\nwith newline", Targets: []deploy.Target{{Address: "127.0.0.1:9"}}}}}
	d, err := s.PutDraft(ctx, "edge", cfg, 0, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Freeze(ctx, "edge", d.Version, func(d store.Draft, n uint64) (store.Deployment, error) {
		body, err := d.Config.Canonical()
		return store.Deployment{Config: body, Checksum: "sha256:x", Signature: []byte("sig")}, err
	}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.AppendAudit(ctx, store.AuditEntry{User: "ann", Action: "a", Result: store.AuditOK}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func write(t *testing.T, s store.Store, domain string, key ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := backup.Write(ctx, &buf, s, domain, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rewrite decompresses b, lets edit change the text, and compresses it
// again: an edit of the content, not of the compression.
func rewrite(t *testing.T, b []byte, edit func(string) string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write([]byte(edit(string(text))))
	zw.Close()
	return out.Bytes()
}

func TestRoundTrip(t *testing.T) {
	key := newKey(t)
	src := domainStore(t, key)
	b := write(t, src, "acme", key)
	dst := openBolt(t)
	res, err := backup.Restore(ctx, bytes.NewReader(b), dst, backupfile.Expect{Domain: "acme", Key: key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[store.KindDeployment] != 1 || res.Counts[store.KindAudit] != 3 || res.Domain != "acme" {
		t.Errorf("summary %+v", res)
	}
	a, err := src.ListDeployments(ctx, "edge")
	if err != nil {
		t.Fatal(err)
	}
	c, err := dst.ListDeployments(ctx, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 1 || !bytes.Equal(a[0].Config, c[0].Config) || a[0].Checksum != c[0].Checksum {
		t.Errorf("restored deployments %+v, want %+v", c, a)
	}
}

func TestRefused(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	good := write(t, domainStore(t, key), "acme", key)
	other := newKey(t)
	// Another domain of the same name, with its own key.
	foreign := write(t, domainStore(t, other), "acme", other)

	for _, tc := range []struct {
		name string
		data []byte
		want backupfile.Expect
		err  error
	}{
		{"another domain's name", good, backupfile.Expect{Domain: "prod", Key: pub}, backupfile.ErrForeign},
		{"another domain's key", foreign, backupfile.Expect{Domain: "acme", Key: pub}, backupfile.ErrForeign},
		{"header edited to this key", rewrite(t, foreign, func(s string) string {
			return strings.Replace(s, deploy.KeyFingerprint(other.Public().(ed25519.PublicKey)), deploy.KeyFingerprint(pub), 1)
		}), backupfile.Expect{Domain: "acme", Key: pub}, backupfile.ErrForeign},
		{"record edited", rewrite(t, good, func(s string) string { return strings.Replace(s, `"user":"ann"`, `"user":"eve"`, 1) }),
			backupfile.Expect{Domain: "acme", Key: pub}, backupfile.ErrTampered},
		{"record removed", rewrite(t, good, func(s string) string {
			lines := strings.SplitAfter(s, "\n")
			return strings.Join(append(lines[:3:3], lines[4:]...), "")
		}), backupfile.Expect{Domain: "acme", Key: pub}, backupfile.ErrTampered},
		{"cut short", good[:len(good)/2], backupfile.Expect{Domain: "acme", Key: pub}, backupfile.ErrTampered},
		{"last line removed", rewrite(t, good, func(s string) string {
			lines := strings.SplitAfter(strings.TrimSuffix(s, "\n"), "\n")
			return strings.Join(lines[:len(lines)-1], "")
		}), backupfile.Expect{Domain: "acme", Key: pub}, backupfile.ErrTampered},
		{"not gzip", []byte("hello"), backupfile.Expect{Domain: "acme", Key: pub}, backupfile.ErrFormat},
		{"newer format", rewrite(t, good, func(s string) string { return strings.Replace(s, backupfile.Format, "gatehouse-backup-v9", 1) }),
			backupfile.Expect{Domain: "acme", Key: pub}, backupfile.ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openBolt(t)
			_, err := backup.Restore(ctx, bytes.NewReader(tc.data), dst, tc.want)
			if !errors.Is(err, tc.err) {
				t.Fatalf("restore: %v, want %v", err, tc.err)
			}
			if _, err := dst.GetDomain(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused restore left a domain: %v", err)
			}
		})
	}
}

func TestRestoreIntoNonEmpty(t *testing.T) {
	key := newKey(t)
	b := write(t, domainStore(t, key), "acme", key)
	dst := domainStore(t, key)
	_, err := backup.Restore(ctx, bytes.NewReader(b), dst, backupfile.Expect{Domain: "acme", Key: key.Public().(ed25519.PublicKey)})
	if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "nothing changed") {
		t.Fatalf("restore into a store with a domain: %v", err)
	}
}

func TestObjectNamesSortByTime(t *testing.T) {
	t1 := time.Date(2026, 12, 2, 9, 59, 59, 999e6, time.UTC)
	names := []string{
		backupfile.ObjectName("acme", t1),
		backupfile.ObjectName("acme", t1.Add(time.Millisecond)),
		backupfile.ObjectName("acme", t1.Add(24*time.Hour)),
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("%s does not sort before %s", names[i-1], names[i])
		}
	}
}

func TestUploadStoresOnlyVerifiedBackups(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	good := write(t, domainStore(t, key), "acme", key)
	bucket, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := backupfile.Upload(ctx, bucket, "ok"+backupfile.Suffix, bytes.NewReader(good), backupfile.Expect{Domain: "acme", Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(good)) || st.SHA256 != fmt.Sprintf("%x", sha256.Sum256(good)) || st.Counts[store.KindGroup] != 1 {
		t.Errorf("stored %+v", st)
	}
	for name, data := range map[string][]byte{
		"cut":     good[:len(good)-20],
		"edited":  rewrite(t, good, func(s string) string { return strings.Replace(s, `"name":"edge"`, `"name":"edgy"`, 1) }),
		"trailer": append(append([]byte{}, good...), "junk"...),
	} {
		if _, err := backupfile.Upload(ctx, bucket, name+backupfile.Suffix, bytes.NewReader(data), backupfile.Expect{Domain: "acme", Key: pub}); err == nil {
			t.Errorf("%s backup uploaded", name)
		}
	}
	objs, err := bucket.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "ok"+backupfile.Suffix {
		t.Errorf("bucket holds %+v, want only the verified backup", objs)
	}
}
