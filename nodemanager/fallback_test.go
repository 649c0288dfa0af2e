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
	"github.com/gatehouse/gatehouse/pubseal"
)

// The fallback gives a group with no stored deployment the published one,
// and refuses anything it cannot open with its publish keys (none yet, in
// clear, sealed for another group, tampered, another key), unsigned, of
// another domain or group, or older than what the node has.
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
	pk, _ := pubseal.ParseKey(pubseal.NewKey())
	otherKey, _ := pubseal.ParseKey(pubseal.NewKey())
	clearSigned := func(key []byte, domain, group string, n uint64) []byte {
		d, err := deploy.NewDeployment(domain, group, n, &deploy.Config{}, "alice", "", time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Sign(key)
		b, _ := json.Marshal(d)
		return b
	}
	sealed := func(k *pubseal.Key, group string, plain []byte) []byte {
		b, err := pubseal.Seal(k, "acme", group, plain)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// signedBy is published as an admin node of this domain does, sealed
	// for group web.
	signedBy := func(key []byte, domain, group string, n uint64) []byte {
		return sealed(pk, "web", clearSigned(key, domain, group, n))
	}
	tampered := func() []byte {
		var env struct {
			Format string `json:"format"`
			Key    string `json:"key"`
			Nonce  []byte `json:"nonce"`
			Sealed []byte `json:"sealed"`
		}
		if err := json.Unmarshal(signedBy(priv, "acme", "web", 3), &env); err != nil {
			t.Fatal(err)
		}
		env.Sealed[10] ^= 1
		b, _ := json.Marshal(env)
		return b
	}()
	publish := func(b []byte) {
		if err := bucket.Put(ctx, "groups/web/current", strings.NewReader(string(b))); err != nil {
			t.Fatal(err)
		}
	}
	unsigned := func() []byte {
		d, _ := deploy.NewDeployment("acme", "web", 3, &deploy.Config{}, "alice", "", time.Now(), nil)
		b, _ := json.Marshal(d)
		return sealed(pk, "web", b)
	}()

	publish(signedBy(priv, "acme", "web", 3))
	var none string
	if n := a.tryFallback(ctx, "web", &none); n != 0 || !strings.Contains(none, "no publish key") {
		t.Fatalf("without publish keys: stored %d, error %q", n, none)
	}
	if err := st.PutPublishKeys([][]byte{otherKey.Bytes(), pk.Bytes()}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"unsigned", unsigned, deploy.ErrBadSignature.Error()},
		{"another domain's key", signedBy(otherPriv, "acme", "web", 3), deploy.ErrBadSignature.Error()},
		{"another domain's name", signedBy(priv, "other", "web", 3), `domain "other"`},
		{"another group", signedBy(priv, "acme", "api", 3), `group "api"`},
		{"not a deployment", []byte("<html>"), pubseal.ErrNotSealed.Error()},
		{"in clear", clearSigned(priv, "acme", "web", 3), "a deployment in clear"},
		{"sealed for another group", sealed(pk, "api", clearSigned(priv, "acme", "web", 3)), pubseal.ErrOpen.Error()},
		{"tampered", tampered, pubseal.ErrOpen.Error()},
		{"sealed with another key", sealed(func() *pubseal.Key { k, _ := pubseal.ParseKey(pubseal.NewKey()); return k }(), "web", clearSigned(priv, "acme", "web", 3)), pubseal.ErrUnknownKey.Error()},
		{"sealed content not a deployment", sealed(pk, "web", []byte("<html>")), "not a deployment"},
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
	if err := a.checkFallback(mustDecode(t, clearSigned(priv, "acme", "web", 4)), "web", stored); err == nil || !strings.Contains(err.Error(), "older") {
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
