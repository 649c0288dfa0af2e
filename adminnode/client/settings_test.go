package client_test

import (
	"context"
	"maps"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitest"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

// The settings' calls against the real API.
func TestSettingsAgainstAdminNode(t *testing.T) {
	ctx := context.Background()
	hs, root := apitest.AdminNode(t)
	anon, err := client.New(client.Config{Address: hs.URL, CAFingerprint: root.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	login, err := anon.Login(ctx, "admin", password)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Address: hs.URL, Token: login.Token, CAFingerprint: root.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}

	env, err := c.ReplaceEnvironment(ctx, "prod", map[string]string{"A": "1", "B": "2"}, 0)
	if err != nil || env.Version != 1 {
		t.Fatalf("ReplaceEnvironment = %+v, %v", env, err)
	}
	if _, err := c.ReplaceEnvironment(ctx, "prod", nil, 7); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("ReplaceEnvironment at a stale version: %v", err)
	}
	if env, err = c.EditEnvironment(ctx, "prod", map[string]string{"C": "3"}, []string{"A"}); err != nil {
		t.Fatal(err)
	}
	if env, err = c.SetValue(ctx, "prod", "D", "4"); err != nil {
		t.Fatal(err)
	}
	if err := c.UnsetValue(ctx, "prod", "B"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetSecret(ctx, "prod", "PW", "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
	env, err = c.GetEnvironment(ctx, "prod")
	if err != nil || !maps.Equal(env.Values, map[string]string{"C": "3", "D": "4"}) || len(env.Secrets) != 1 || env.Secrets[0].Name != "PW" {
		t.Fatalf("GetEnvironment = %+v, %v", env, err)
	}
	if secrets, err := c.ListSecrets(ctx, "prod"); err != nil || len(secrets) != 1 {
		t.Fatalf("ListSecrets = %+v, %v", secrets, err)
	}
	if err := c.UnsetSecret(ctx, "prod", "PW"); err != nil {
		t.Fatal(err)
	}
	if envs, err := c.ListEnvironments(ctx); err != nil || len(envs) != 1 || len(envs[0].Secrets) != 0 {
		t.Fatalf("ListEnvironments = %+v, %v", envs, err)
	}
	if err := c.DeleteEnvironment(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEnvironment(ctx, "prod"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("GetEnvironment after delete: %v", err)
	}

	dom, err := c.Domain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The domain's own key, under another name (its own is refused).
	d, err := c.TrustDomain(ctx, "dev", dom.SigningKey)
	if err != nil || d.Fingerprint != dom.SigningKeyFingerprint {
		t.Fatalf("TrustDomain = %+v, %v", d, err)
	}
	if got, err := c.GetTrustedDomain(ctx, "dev"); err != nil || got.PublicKey != dom.SigningKey {
		t.Fatalf("GetTrustedDomain = %+v, %v", got, err)
	}
	if l, err := c.ListTrustedDomains(ctx); err != nil || len(l) != 1 {
		t.Fatalf("ListTrustedDomains = %+v, %v", l, err)
	}
	if err := c.UntrustDomain(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if err := c.UntrustDomain(ctx, "dev"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("UntrustDomain twice: %v", err)
	}
}
