package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/s3test"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/objstore"
	"github.com/gatehouse/gatehouse/pubseal"
)

// startPublishedGateway makes a gateway of testGroup whose source is url,
// loads it and follows the object (no listeners).
func startPublishedGateway(t *testing.T, url string, key []byte, dataDir string) (*Gateway, func()) {
	t.Helper()
	g, err := New(Options{Instance: testInstance, Group: testGroup, DataDir: dataDir,
		ConfigURL: url, ConfigPoll: 50 * time.Millisecond, DomainKey: key,
		PublishDomain: "acme", PublishKeys: []*pubseal.Key{testPublishKey(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { g.followPublished(ctx, g.publishedOK) })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			g.registry.Close()
			g.store.Close()
		})
	}
	t.Cleanup(stop)
	return g, stop
}

func put(t *testing.T, b objstore.Bucket, body []byte) {
	t.Helper()
	if err := b.Put(context.Background(), "groups/web/current", strings.NewReader(string(body))); err != nil {
		t.Fatal(err)
	}
}

// testPublishKey is the publish key of the tests' domain, acme.
func testPublishKey(t *testing.T) *pubseal.Key {
	k, err := pubseal.ParseKey(bytes.Repeat([]byte{7}, pubseal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sealFor seals plain as the admin node publishes it for group with k.
func sealFor(t *testing.T, k *pubseal.Key, group string, plain []byte) []byte {
	b, err := pubseal.Seal(k, "acme", group, plain)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encode is d as an admin node publishes it for the gateway's group.
func encode(t *testing.T, d *deploy.Deployment) []byte {
	return sealFor(t, testPublishKey(t), testGroup, inClear(t, d))
}

func inClear(t *testing.T, d *deploy.Deployment) []byte {
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A gateway on a fresh data dir starts on the published deployment, from
// S3; it follows newer ones, refuses forged ones while it keeps serving,
// and after a restart refuses an older one than it stored.
func TestPublishedDeployment(t *testing.T) {
	pub, priv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := deploy.GenerateSigningKey()
	otherPublishKey, _ := pubseal.ParseKey(pubseal.NewKey())
	srv := s3test.Start(t)
	srv.SetEnv(t)
	b, err := objstore.Open(context.Background(), srv.URL("domain"), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	url := "s3://" + srv.Bucket + "/domain/groups/web/current?endpoint=" + srv.Endpoint + "&style=path"
	d3 := signed(t, priv, testGroup, 3)
	put(t, b, encode(t, d3))

	dir := t.TempDir()
	g, stop := startPublishedGateway(t, url, pub, dir)
	if cur := g.proxy.Current(); cur == nil || cur.Checksum != d3.Checksum || g.deployment.Load() != 3 || !g.Ready() {
		t.Fatalf("started on %v, deployment %d; want the published deployment 3", cur, g.deployment.Load())
	}
	st := g.Status().(Report)
	if !strings.HasPrefix(st.Source, "object-storage s3://"+srv.Bucket+"/domain/groups/web/") || st.Deployment.ObjectStorage == nil {
		t.Errorf("/status source %q, deployment %+v", st.Source, st.Deployment)
	}

	d5 := signed(t, priv, testGroup, 5)
	put(t, b, encode(t, d5))
	waitfor.True(t, 10*time.Second, "deployment 5 applied", func() bool { return g.deployment.Load() == 5 })

	unsigned := signed(t, priv, testGroup, 6)
	unsigned.Signature = nil
	tampered := signed(t, priv, testGroup, 9)
	tampered.Config = json.RawMessage(strings.Replace(string(tampered.Config), "/v9", "/evil", 1))
	tampered.Checksum = sha256Of(tampered.Config)
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"unsigned", encode(t, unsigned), deploy.ErrBadSignature.Error()},
		{"another domain's key", encode(t, signed(t, otherPriv, testGroup, 7)), deploy.ErrBadSignature.Error()},
		{"another group", encode(t, signed(t, priv, "api", 8)), errOtherGroup.Error()},
		{"older", encode(t, signed(t, priv, testGroup, 4)), errOldNumber.Error()},
		{"tampered", encode(t, tampered), deploy.ErrBadSignature.Error()},
		{"not a deployment", []byte(`<Error>NoSuchKey</Error>`), pubseal.ErrNotSealed.Error()},
		{"in clear", inClear(t, signed(t, priv, testGroup, 10)), "a deployment in clear"},
		{"sealed for another group", sealFor(t, testPublishKey(t), "api", inClear(t, signed(t, priv, testGroup, 11))), pubseal.ErrOpen.Error()},
		{"sealed with another key", sealFor(t, otherPublishKey, testGroup, inClear(t, signed(t, priv, testGroup, 12))), pubseal.ErrUnknownKey.Error()},
		{"sealed, not a deployment", sealFor(t, testPublishKey(t), testGroup, []byte("<html>")), "not a published deployment"},
		{"another object", sealFor(t, testPublishKey(t), testGroup, []byte(`{"services":[]}`)), deploy.ErrChecksumMismatch.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			put(t, b, tc.body)
			waitfor.Cond(t, 10*time.Second, "the refusal in /status", func() (bool, string) {
				st := g.Status().(Report)
				var reason string
				if lr := st.Deployment.LastRefused; lr != nil {
					reason = lr.Reason
				}
				if o := st.Deployment.ObjectStorage; o != nil && o.LastError != "" {
					reason = o.LastError
				}
				return strings.Contains(reason, tc.want), reason
			})
			if g.deployment.Load() != 5 || g.proxy.Current().Checksum != d5.Checksum {
				t.Errorf("serving deployment %d after a forged object, want 5", g.deployment.Load())
			}
		})
	}

	// Restarted with the object storage gone, it serves what it stored.
	stop()
	put(t, b, encode(t, signed(t, priv, testGroup, 2)))
	g2, _ := startPublishedGateway(t, "s3://"+srv.Bucket+"/domain/groups/web/current?endpoint=http://127.0.0.1:1&style=path", pub, dir)
	if g2.deployment.Load() != 5 {
		t.Fatalf("restarted without object storage on deployment %d, want the stored 5", g2.deployment.Load())
	}
	// Back, with an older object: refused.
	g3, _ := startPublishedGateway(t, url, pub, t.TempDir())
	if g3.deployment.Load() != 2 {
		t.Fatalf("fresh gateway on deployment %d, want the published 2", g3.deployment.Load())
	}
}

func TestPublishedDeploymentOlderThanStored(t *testing.T) {
	pub, priv, _ := deploy.GenerateSigningKey()
	dir := t.TempDir()
	b, err := objstore.OpenDir(dir + "/bucket")
	if err != nil {
		t.Fatal(err)
	}
	url := "file://" + dir + "/bucket/groups/web/current"
	put(t, b, encode(t, signed(t, priv, testGroup, 7)))
	_, stop := startPublishedGateway(t, url, pub, dir+"/data")
	stop()
	put(t, b, encode(t, signed(t, priv, testGroup, 6)))
	g, _ := startPublishedGateway(t, url, pub, dir+"/data")
	if g.deployment.Load() != 7 {
		t.Fatalf("serving deployment %d, want the stored 7", g.deployment.Load())
	}
	refused, _ := g.published.status()
	if refused == nil || refused.Number != 6 || !strings.Contains(refused.Reason, errOldNumber.Error()) {
		t.Fatalf("last refused %+v, want 6 as older", refused)
	}
}

func TestPublishedOptions(t *testing.T) {
	pub, _, _ := deploy.GenerateSigningKey()
	keys := []*pubseal.Key{testPublishKey(t)}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no key", Options{Group: "web", ConfigURL: "file:///tmp/x/current", PublishDomain: "acme", PublishKeys: keys}, "deployment key"},
		{"no publish key", Options{Group: "web", ConfigURL: "file:///tmp/x/current", DomainKey: pub}, "publish keys"},
		{"two sources", Options{Group: "web", ConfigURL: "file:///tmp/x/current", ConfigPath: "/x.yaml", DomainKey: pub, PublishDomain: "acme", PublishKeys: keys}, "one source"},
		{"no object", Options{Group: "web", ConfigURL: "file:///tmp/x/", DomainKey: pub, PublishDomain: "acme", PublishKeys: keys}, "names no object"},
	} {
		_, err := New(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
