package nodemanager

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/objstore"
)

// The fallback gives a group with no stored deployment the published one,
// and refuses anything unsigned, of another domain or group, or older
// than what the node has.
func TestFallbackChecks(t *testing.T) {
	pub, priv, _ := deploy.GenerateSigningKey()
	_, otherPriv, _ := deploy.GenerateSigningKey()
	bucket, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := openState(t, filepath.Join(t.TempDir(), "node.db"))
	a := &agent{log: hclog.NewNullLogger(), state: st, changed: newBroadcast(), fallback: bucket,
		id: Identity{Domain: "acme", SigningKey: deploy.EncodePublicKey(pub)}}
	ctx := context.Background()
	signedBy := func(key []byte, domain, group string, n uint64) []byte {
		d, err := deploy.NewDeployment(domain, group, n, &deploy.Config{}, "alice", "", time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Sign(key)
		b, _ := json.Marshal(d)
		return b
	}
	publish := func(b []byte) {
		if err := bucket.Put(ctx, "groups/web/current", strings.NewReader(string(b))); err != nil {
			t.Fatal(err)
		}
	}
	unsigned := func() []byte {
		d, _ := deploy.NewDeployment("acme", "web", 3, &deploy.Config{}, "alice", "", time.Now(), nil)
		b, _ := json.Marshal(d)
		return b
	}()
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"unsigned", unsigned, deploy.ErrBadSignature.Error()},
		{"another domain's key", signedBy(otherPriv, "acme", "web", 3), deploy.ErrBadSignature.Error()},
		{"another domain's name", signedBy(priv, "other", "web", 3), `domain "other"`},
		{"another group", signedBy(priv, "acme", "api", 3), `group "api"`},
		{"not a deployment", []byte("<html>"), "not a deployment"},
	} {
		publish(tc.body)
		var last string
		if n := a.tryFallback(ctx, "web", &last); n != 0 {
			t.Errorf("%s: stored as deployment %d", tc.name, n)
		}
		if !strings.Contains(last, tc.want) || !strings.Contains(last, errFallbackRefused.Error()) {
			t.Errorf("%s: error %q, want %q", tc.name, last, tc.want)
		}
	}
	var last string
	if n := a.tryFallback(ctx, "missing", &last); n != 0 || !strings.Contains(last, objstore.ErrNotExist.Error()) {
		t.Errorf("nothing published: %d, %q", n, last)
	}

	publish(signedBy(priv, "acme", "web", 5))
	if n := a.tryFallback(ctx, "web", &last); n != 5 || last != "" {
		t.Fatalf("good deployment: stored %d (%q), want 5", n, last)
	}
	if d, _ := st.Deployment("web"); d == nil || d.Number != 5 {
		t.Fatalf("stored %+v", d)
	}
	// With a deployment stored the fallback is not asked again.
	publish(signedBy(priv, "acme", "web", 6))
	if n := a.tryFallback(ctx, "web", &last); n != 0 {
		t.Errorf("asked with a deployment stored: %d", n)
	}
	stored, _ := st.Deployment("web")
	if err := a.checkFallback(mustDecode(t, signedBy(priv, "acme", "web", 4)), "web", stored); err == nil || !strings.Contains(err.Error(), "older") {
		t.Errorf("older than stored: %v", err)
	}
}

func mustDecode(t *testing.T, b []byte) *deploy.Deployment {
	var d deploy.Deployment
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func TestUnreachable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("dial tcp: connection refused"), true},
		{&client.APIError{Status: 503, Detail: apitypes.Error{Code: "unavailable"}}, true},
		{&client.APIError{Status: 403}, false},
		{&client.APIError{Status: 401}, false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("unreachable(%v) = %v", tc.err, got)
		}
	}
}
