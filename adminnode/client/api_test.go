package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitest"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
)

const password = apitest.Password

// TestAgainstAdminNode drives the real API the way the CLI does: a
// pinned login, then the draft and deployment cycle.
func TestAgainstAdminNode(t *testing.T) {
	ctx := context.Background()
	hs, root := apitest.AdminNode(t)

	anon, err := client.New(client.Config{Address: hs.URL, CAFingerprint: root.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Login(ctx, "admin", "wrong password"); !client.IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("login with a wrong password: %v, want 401", err)
	}
	login, err := anon.Login(ctx, "admin", password)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := anon.ServerCA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Address: hs.URL, Token: login.Token, CACertPEM: caPEM})
	if err != nil {
		t.Fatal(err)
	}
	if who, err := c.WhoAmI(ctx); err != nil || who.User != "admin" {
		t.Fatalf("WhoAmI = %+v, %v", who, err)
	}

	g, err := c.CreateGroup(ctx, apitypes.Group{Name: "web", Labels: map[string]string{"env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateGroup(ctx, apitypes.Group{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	groups, err := c.ListGroups(ctx, "env=prod")
	if err != nil || len(groups) != 1 || groups[0].Name != "web" {
		t.Fatalf("ListGroups(env=prod) = %+v, %v", groups, err)
	}
	g.Description = "public"
	if _, err := c.UpdateGroup(ctx, g, g.Version+1); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("UpdateGroup at a stale version: %v, want 409", err)
	}
	if _, err := c.UpdateGroup(ctx, g, g.Version); err != nil {
		t.Fatal(err)
	}

	draft, err := c.GetDraft(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	// A draft must decode (400 otherwise) but need not be valid until
	// it is deployed (422 otherwise).
	doc := "upstreams:\n  - name: u\n    targets: [{address: \"127.0.0.1:9\"}]\n" +
		"services:\n  - name: s\n    upstream: u\n    routes:\n      - name: r\n        paths: PATHS\n"
	withPaths := func(p string) []byte { return []byte(strings.Replace(doc, "PATHS", p, 1)) }
	_, err = c.PutDraft(ctx, "web", withPaths("nope"), "application/yaml", draft.Version)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || len(apiErr.Detail.Errors) == 0 ||
		!strings.Contains(err.Error(), "services[0].routes[0].paths: must be a list") {
		t.Fatalf("PutDraft of a configuration that does not decode: %v", err)
	}
	invalid, err := c.PutDraft(ctx, "web", withPaths("[nope]"), "application/yaml", draft.Version)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.ValidateDraft(ctx, "web", nil, ""); err != nil || v.Valid || len(v.Errors) != 1 {
		t.Fatalf("ValidateDraft of the stored draft = %+v, %v", v, err)
	}
	_, err = c.Deploy(ctx, "web", apitypes.DeployRequest{Message: "invalid"})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity ||
		!strings.Contains(err.Error(), "services[0].routes[0].paths[0]: ") {
		t.Fatalf("Deploy of an invalid draft: %v", err)
	}
	good := withPaths(`["/"]`)
	if v, err := c.ValidateDraft(ctx, "web", good, "application/yaml"); err != nil || !v.Valid {
		t.Fatalf("ValidateDraft = %+v, %v", v, err)
	}
	d, err := c.PutDraft(ctx, "web", good, "application/yaml", invalid.Version)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version == invalid.Version {
		t.Fatalf("draft version still %d after PutDraft", d.Version)
	}
	if _, err := c.PutDraft(ctx, "web", good, "application/yaml", invalid.Version); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("PutDraft at a stale version: %v, want 409", err)
	}
	diff, err := c.DraftDiff(ctx, "web")
	if err != nil || len(diff.Changes) == 0 {
		t.Fatalf("DraftDiff = %+v, %v", diff, err)
	}

	first, err := c.Deploy(ctx, "web", apitypes.DeployRequest{Message: "first", DraftVersion: d.Version})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PutDraftRoute(ctx, "web", "s", "r", deploy.Route{Name: "r", Paths: []string{"/api/*"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deploy(ctx, "web", apitypes.DeployRequest{Message: "second"}); err != nil {
		t.Fatal(err)
	}
	latest, err := c.GetDeployment(ctx, "web", client.Latest)
	if err != nil || latest.Number != first.Number+1 || latest.Config == nil {
		t.Fatalf("GetDeployment(latest) = %+v, %v", latest, err)
	}
	diff, err = c.Diff(ctx, "web", "1", client.Latest)
	if err != nil || len(diff.Changes) != 1 || diff.Changes[0].Kind != deploy.KindRoute {
		t.Fatalf("Diff(1, latest) = %+v, %v", diff, err)
	}
	back, err := c.Rollback(ctx, "web", first.Number, "undo")
	if err != nil || back.RollbackOf != first.Number || back.Checksum != first.Checksum {
		t.Fatalf("Rollback = %+v, %v", back, err)
	}
	if back.Draft != apitypes.DraftReset {
		t.Errorf("Rollback left the draft %q, want it reset", back.Draft)
	}
	if _, err := c.Deploy(ctx, "web", apitypes.DeployRequest{Message: "same"}); !client.IsNothingToDeploy(err) {
		t.Errorf("Deploy of the draft rolled back to = %v, want nothing to deploy", err)
	}
	ro, err := c.Rollout(ctx, "web", client.Latest, nil, 0)
	if err != nil || ro.Deployment != back.Number || ro.State != "complete" || ro.Total != 0 || ro.Index == 0 {
		t.Fatalf("Rollout(latest) = %+v, %v", ro, err)
	}
	if again, err := c.Rollout(ctx, "web", client.Latest, &ro.Index, 10*time.Millisecond); err != nil || again.Index != ro.Index {
		t.Fatalf("Rollout(latest, index) = %+v, %v", again, err)
	}
	deps, err := c.ListDeployments(ctx, "web")
	if err != nil || len(deps) != 3 {
		t.Fatalf("ListDeployments = %d, %v", len(deps), err)
	}

	entries, err := c.Audit(ctx, client.AuditFilter{Action: "deployment.create", Limit: 1})
	if err != nil || len(entries) != 1 {
		t.Fatalf("Audit = %+v, %v", entries, err)
	}

	tok, err := c.CreateToken(ctx, apitypes.TokenCreate{Name: "ci", TTL: "1h"})
	if err != nil || tok.Secret == "" {
		t.Fatalf("CreateToken = %+v, %v", tok, err)
	}
	if err := c.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(ctx); !client.IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("WhoAmI after logout: %v, want 401", err)
	}
}
