package publish

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/s3test"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/objstore"
	"github.com/gatehouse/gatehouse/pubseal"
)

// domain is a fake Source: groups and their current deployments.
type domain struct {
	t   *testing.T
	key ed25519.PrivateKey

	mu      sync.Mutex
	current map[string]*deploy.Deployment
	changed chan struct{}
	keys    []*pubseal.Key
}

func newDomain(t *testing.T) *domain {
	_, key, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return &domain{t: t, key: key, current: map[string]*deploy.Deployment{}, changed: make(chan struct{}), keys: []*pubseal.Key{newKey(t)}}
}

func newKey(t *testing.T) *pubseal.Key {
	k, err := pubseal.ParseKey(pubseal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rotate makes a new sealing key, keeping the previous one.
func (d *domain) rotate() *pubseal.Key {
	k := newKey(d.t)
	d.mu.Lock()
	d.keys = []*pubseal.Key{k, d.keys[0]}
	d.mu.Unlock()
	return k
}

func (d *domain) PublishKeys(context.Context) ([]*pubseal.Key, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keys, nil
}

func (d *domain) deploy(group string, number uint64) *deploy.Deployment {
	dep, err := deploy.NewDeployment("acme", group, number, &deploy.Config{}, "alice", "", time.Now(), nil)
	if err != nil {
		d.t.Fatal(err)
	}
	dep.Sign(d.key)
	d.mu.Lock()
	d.current[group] = dep
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
	return dep
}

func (d *domain) addGroup(group string) {
	d.mu.Lock()
	d.current[group] = nil
	d.mu.Unlock()
}

func (d *domain) deleteGroup(group string) {
	d.mu.Lock()
	delete(d.current, group)
	d.mu.Unlock()
}

func (d *domain) Groups(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for g := range d.current {
		out = append(out, g)
	}
	return out, nil
}

func (d *domain) CurrentDeployment(_ context.Context, group string) (*deploy.Deployment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current[group], nil
}

func (d *domain) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// flaky is a bucket that counts puts and fails them while broken.
type flaky struct {
	objstore.Bucket
	puts   atomic.Int32
	broken atomic.Bool
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader) error {
	if f.broken.Load() {
		return errors.New("bucket unreachable")
	}
	f.puts.Add(1)
	return f.Bucket.Put(ctx, key, r)
}

// raw reads what the bucket holds for group.
func raw(t *testing.T, b objstore.Bucket, group string) []byte {
	t.Helper()
	r, err := b.Get(context.Background(), Key(group))
	if err != nil {
		t.Fatalf("published deployment of %s: %v", group, err)
	}
	defer r.Close()
	obj, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// fetch opens and verifies what the bucket holds for group.
func fetch(t *testing.T, b objstore.Bucket, dom *domain, group string) *deploy.Deployment {
	t.Helper()
	keys, _ := dom.PublishKeys(context.Background())
	plain, _, err := pubseal.Open(keys, "acme", group, raw(t, b, group))
	if err != nil {
		t.Fatalf("published deployment of %s: %v", group, err)
	}
	var d deploy.Deployment
	if err := json.Unmarshal(plain, &d); err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(dom.key.Public().(ed25519.PublicKey), nil); err != nil {
		t.Fatalf("published deployment of %s does not verify: %v", group, err)
	}
	return &d
}

func TestSyncPublishesMendsAndRemoves(t *testing.T) {
	ctx := context.Background()
	dom := newDomain(t)
	dir, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := &flaky{Bucket: dir}
	p := New(b, dom, nil)

	dom.deploy("web", 1)
	dom.deploy("api", 4)
	dom.addGroup("empty")
	if err := p.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	if d := fetch(t, b, dom, "web"); d.Number != 1 || d.Group != "web" || d.Domain != "acme" {
		t.Errorf("web: %+v", d)
	}
	if d := fetch(t, b, dom, "api"); d.Number != 4 {
		t.Errorf("api: number %d, want 4", d.Number)
	}
	if _, err := b.Get(ctx, Key("empty")); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("a group without deployment published: %v", err)
	}

	// Nothing changed: nothing written, whether trusted or read back.
	puts := b.puts.Load()
	for _, full := range []bool{false, true} {
		if err := p.Sync(ctx, full); err != nil {
			t.Fatal(err)
		}
	}
	if b.puts.Load() != puts {
		t.Errorf("%d puts with nothing changed", b.puts.Load()-puts)
	}

	// A failure is reported, counted and healed by the next pass.
	dom.deploy("web", 2)
	b.broken.Store(true)
	if err := p.Sync(ctx, false); err == nil || !strings.Contains(err.Error(), "group web") {
		t.Fatalf("sync into a broken bucket: %v, want an error naming the group", err)
	}
	if got := testutil.ToFloat64(p.pending); got != 1 {
		t.Errorf("pending groups %v, want 1", got)
	}
	if got := testutil.ToFloat64(p.attempts.WithLabelValues("error")); got != 1 {
		t.Errorf("errors counted %v, want 1", got)
	}
	b.broken.Store(false)
	if err := p.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if d := fetch(t, b, dom, "web"); d.Number != 2 {
		t.Errorf("web after the bucket came back: %d, want 2", d.Number)
	}
	if got := testutil.ToFloat64(p.pending); got != 0 {
		t.Errorf("pending groups %v, want 0", got)
	}

	// An object changed behind the publisher's back is mended by a full
	// pass; a deleted group's object is removed.
	if err := b.Put(ctx, Key("api"), strings.NewReader("garbage")); err != nil {
		t.Fatal(err)
	}
	dom.deleteGroup("web")
	if err := p.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	if d := fetch(t, b, dom, "api"); d.Number != 4 {
		t.Errorf("api after a full pass: %d, want 4", d.Number)
	}
	if _, err := b.Get(ctx, Key("web")); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("the deleted group's deployment is still published: %v", err)
	}
	if testutil.ToFloat64(p.lastSuccess) == 0 {
		t.Error("last success not set")
	}
	if n, err := testutil.GatherAndCount(prometheusRegistry(t, p)); err != nil || n != 4 {
		t.Errorf("%d metrics (%v), want ok and error counts, last success and pending", n, err)
	}
}

// What the bucket holds is sealed: no name, author or value of the
// deployment shows. A rotation seals every object again with the new key
// at the next pass; an object in clear (an older admin node's) is
// written over.
func TestSyncSealsAndReseals(t *testing.T) {
	ctx := context.Background()
	dom := newDomain(t)
	dir, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := &flaky{Bucket: dir}
	p := New(b, dom, nil)
	dom.deploy("web", 1)
	if err := p.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	obj := raw(t, b, "web")
	for _, shown := range []string{"acme", "alice", `"number"`, `"checksum"`, `"config"`} {
		if strings.Contains(string(obj), shown) {
			t.Errorf("the published object shows %s: %s", shown, obj)
		}
	}
	first, _ := pubseal.KeyID(obj)

	k := dom.rotate()
	dom.deploy("api", 1) // wakes a pass, as the rotation's own change does
	if err := p.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"web", "api"} {
		if id, err := pubseal.KeyID(raw(t, b, g)); err != nil || id != k.ID {
			t.Errorf("%s sealed with %q (%v) after the rotation, want the new key %q (was %q)", g, id, err, k.ID, first)
		}
	}
	if d := fetch(t, b, dom, "web"); d.Number != 1 {
		t.Errorf("web after the rotation: %d", d.Number)
	}

	plain, err := json.Marshal(fetch(t, b, dom, "web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, Key("web"), strings.NewReader(string(plain))); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := pubseal.KeyID(raw(t, b, "web")); err != nil {
		t.Errorf("an object in clear is not sealed again by a full pass: %v", err)
	}
}

func prometheusRegistry(t *testing.T, c prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return reg
}

type lease struct{ held atomic.Bool }

func (l *lease) Held() bool { return l.held.Load() }

func TestRunPublishesOnChangeWhileTheLeaseIsHeld(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	b, err := objstore.Open(context.Background(), srv.URL("domain"), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dom := newDomain(t)
	p := New(b, dom, nil)
	var l lease
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx, &l, time.Hour) }()
	t.Cleanup(func() { cancel(); <-done })

	dom.deploy("web", 1)
	// Without the lease another admin node publishes: nothing happens here.
	waitfor.Holds(t, time.Second, "nothing published without the lease", func() (bool, string) {
		_, err := b.Get(context.Background(), Key("web"))
		return errors.Is(err, objstore.ErrNotExist), "published without the lease: " + errString(err)
	})
	l.held.Store(true)
	dom.deploy("web", 2) // a change wakes the publisher
	waitfor.Cond(t, 10*time.Second, "deployment 2 published", func() (bool, string) {
		r, err := b.Get(context.Background(), Key("web"))
		if err != nil {
			return false, err.Error()
		}
		r.Close()
		return fetch(t, b, dom, "web").Number == 2, "older deployment published"
	})
	dom.deploy("web", 3)
	waitfor.Cond(t, 10*time.Second, "deployment 3 published", func() (bool, string) {
		return fetch(t, b, dom, "web").Number == 3, "deployment 3 not published"
	})
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
