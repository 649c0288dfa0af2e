package backup

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/objstore"
)

func schedStore(t *testing.T) (*store.Bolt, ed25519.PrivateKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.InitDomain(context.Background(), store.Domain{Name: "acme", SigningPublicKey: key.Public().(ed25519.PublicKey)}); err != nil {
		t.Fatal(err)
	}
	return s, key
}

// clock is a time that moves only when told.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }

// Each scheduled backup is stored, and the bucket keeps exactly the Keep
// newest of the domain's, leaving other objects alone.
func TestScheduleKeepsN(t *testing.T) {
	s, key := schedStore(t)
	dir := t.TempDir()
	bucket, err := objstore.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"acme-notes.txt", "acmeco-20260101T000000.000Z.ghbackup"} {
		if err := os.WriteFile(filepath.Join(dir, other), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &clock{}
	c.add(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC).Sub(time.Unix(0, 0)))
	sc := NewScheduler(Schedule{Bucket: bucket, Interval: time.Hour, Keep: 3}, s, "acme", key, hclog.NewNullLogger(), c.now)
	var names []string
	for range 5 {
		sc.once(context.Background())
		st := sc.Status()
		if st.LastError != "" {
			t.Fatal(st.LastError)
		}
		names = append(names, st.LastName)
		c.add(time.Hour)
	}
	st := sc.Status()
	if st.Successes != 5 || st.Failures != 0 || st.Kept != 3 || st.LastSize == 0 {
		t.Errorf("status %+v", st)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := append(names[2:], "acme-notes.txt", "acmeco-20260101T000000.000Z.ghbackup")
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("bucket holds\n %v\nwant\n %v", got, want)
	}
}

// A location that cannot be written shows in the status, counted, until a
// backup succeeds again.
func TestScheduleFailureShows(t *testing.T) {
	s, key := schedStore(t)
	dir := t.TempDir()
	bucket, err := objstore.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	sc := NewScheduler(Schedule{Bucket: bucket, Interval: time.Hour, Keep: 2}, s, "acme", key, hclog.NewNullLogger(), c.now)
	// The bucket's directory is replaced by a file: nothing can be
	// written under it, whoever runs the test.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	sc.once(context.Background())
	sc.once(context.Background())
	st := sc.Status()
	if st.Failures != 2 || st.Successes != 0 || st.LastError == "" || st.LastFailure.IsZero() {
		t.Fatalf("status after failures %+v", st)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sc.once(context.Background())
	if st := sc.Status(); st.LastError != "" || st.Successes != 1 || st.Failures != 2 {
		t.Errorf("status after success %+v", st)
	}
}

type flag struct{ v atomic.Bool }

func (f *flag) Held() bool { return f.v.Load() }

// Only the holder of the lease takes backups.
func TestScheduleOnlyWithLease(t *testing.T) {
	s, key := schedStore(t)
	bucket, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sc := NewScheduler(Schedule{Bucket: bucket, Interval: time.Second, Keep: 2}, s, "acme", key, hclog.NewNullLogger(), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	lease := &flag{}
	done := make(chan struct{})
	go func() { sc.Run(ctx, lease); close(done) }()
	defer func() { cancel(); <-done }()
	waitfor.Holds(t, 2500*time.Millisecond, "no backup without the lease", func() (bool, string) {
		st := sc.Status()
		return st.Successes == 0 && !st.Running, ""
	})
	lease.v.Store(true)
	waitfor.Cond(t, 10*time.Second, "a backup once the lease is held", func() (bool, string) {
		st := sc.Status()
		return st.Successes >= 1 && st.Running, st.LastError
	})
}
