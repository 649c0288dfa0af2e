package api

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

func TestLoginAndTokens(t *testing.T) {
	e := newEnv(t)
	var login apitypes.LoginResponse
	e.do("", "POST", "/auth/login", apitypes.LoginRequest{User: "admin", Password: testPassword}).
		expect(t, http.StatusOK, "login").decode(t, &login)
	if !strings.HasPrefix(login.Token, "gh_") || !login.ExpiresAt.Equal(e.now.Add(DefaultLoginTTL)) {
		t.Fatalf("login %+v", login)
	}
	var who apitypes.WhoAmI
	e.do(login.Token, "GET", "/auth/whoami", nil).expect(t, http.StatusOK, "whoami").decode(t, &who)
	if who.User != "admin" || len(who.Permissions) != len(rbac.All) || len(who.Bindings) != 1 {
		t.Errorf("whoami %+v", who)
	}

	// An API token: the secret is shown once, works, is listed without
	// its secret, and stops working when revoked or expired.
	var created apitypes.TokenCreated
	e.do(login.Token, "POST", "/tokens", apitypes.TokenCreate{Name: "ci", TTL: "1h"}).
		expect(t, http.StatusCreated, "create token").decode(t, &created)
	e.do(created.Secret, "GET", "/groups", nil).expect(t, http.StatusOK, "use API token")
	list := e.do(login.Token, "GET", "/tokens", nil).expect(t, http.StatusOK, "list tokens")
	if bytes.Contains(list.body, []byte(created.Secret[len("gh_")+16+1:])) {
		t.Errorf("token list shows a secret: %s", list.body)
	}
	e.advance(time.Hour)
	e.do(created.Secret, "GET", "/groups", nil).expect(t, http.StatusUnauthorized, "expired token")
	e.do(login.Token, "POST", "/auth/logout", nil).expect(t, http.StatusNoContent, "logout")
	e.do(login.Token, "GET", "/groups", nil).expect(t, http.StatusUnauthorized, "token after logout")

	for _, tc := range []struct{ name, header string }{
		{"no header", ""},
		{"not bearer", "Basic YWRtaW46eA=="},
		{"malformed", "Bearer nonsense"},
		{"unknown", "Bearer gh_0123456789abcdef_" + strings.Repeat("A", 43)},
		{"wrong secret", "Bearer " + e.admin[:len(e.admin)-4] + "AAAA"},
	} {
		r := e.do("", "GET", "/groups", nil, "Authorization", tc.header).expect(t, http.StatusUnauthorized, tc.name)
		var body apitypes.ErrorBody
		r.decode(t, &body)
		if body.Error.Code != apitypes.CodeUnauthorized {
			t.Errorf("%s: %s", tc.name, r.body)
		}
	}
}

func TestLoginRateLimitAndAudit(t *testing.T) {
	e := newEnv(t)
	free := auth.DefaultLimits().FreeFailures
	for i := range free {
		e.do("", "POST", "/auth/login", apitypes.LoginRequest{User: "admin", Password: "wrong"}).
			expect(t, http.StatusUnauthorized, fmt.Sprint("failed login ", i))
	}
	r := e.do("", "POST", "/auth/login", apitypes.LoginRequest{User: "admin", Password: testPassword}).
		expect(t, http.StatusTooManyRequests, "login after too many failures")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q after the free failures, want 1", got)
	}
	e.do("", "POST", "/auth/login", apitypes.LoginRequest{User: "nobody", Password: "x"}).
		expect(t, http.StatusUnauthorized, "unknown user")
	e.advance(time.Second)
	e.do("", "POST", "/auth/login", apitypes.LoginRequest{User: "admin", Password: testPassword}).
		expect(t, http.StatusOK, "login after the delay")

	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?action=auth.login", nil).expect(t, http.StatusOK, "audit").decode(t, &entries)
	results := map[string]int{}
	for _, en := range entries {
		results[en.Result]++
		if en.Source != "127.0.0.1" || en.RequestID == "" || en.User == "" {
			t.Errorf("audit entry lacks who/where: %+v", en)
		}
		if strings.Contains(en.Detail, testPassword) || strings.Contains(en.Detail, "wrong") {
			t.Errorf("audit entry holds a password: %+v", en)
		}
	}
	if results[store.AuditDenied] != free+2 || results[store.AuditOK] != 1 {
		t.Errorf("login audit results %v, want %d denied and 1 ok", results, free+2)
	}
}

// TestLoginAttackerDoesNotLockOutTheUser hammers admin's password from
// other loopback addresses, as an attacker would from theirs, and logs in
// as admin from 127.0.0.1 all along: the attacker's addresses are slowed
// down, the real user's is not, even once the failures over all
// addresses reach the per-user ceiling.
func TestLoginAttackerDoesNotLockOutTheUser(t *testing.T) {
	e := newEnv(t)
	lim := auth.DefaultLimits()
	login := func(c *http.Client, password string) reply {
		return e.doWith(c, "", "POST", "/auth/login", apitypes.LoginRequest{User: "admin", Password: password})
	}
	attacker := e.from("127.0.0.2")
	for i := range lim.FreeFailures {
		login(attacker, "wrong").expect(t, http.StatusUnauthorized, fmt.Sprint("attacker's failure ", i))
	}
	r := login(attacker, testPassword).expect(t, http.StatusTooManyRequests, "attacker after the free failures")
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", r.header.Get("Retry-After"))
	}
	login(e.http.Client(), testPassword).expect(t, http.StatusOK, "admin from another address")

	// The delays grow: 1 s, then 2 s, 4 s, ... up to the cap.
	for want := time.Second; want < lim.MaxDelay; want *= 2 {
		e.advance(want)
		login(attacker, "wrong").expect(t, http.StatusUnauthorized, "attacker after the delay")
		r := login(attacker, "wrong").expect(t, http.StatusTooManyRequests, "attacker right after a failure")
		if got := r.header.Get("Retry-After"); got != fmt.Sprint(int(min(2*want, lim.MaxDelay).Seconds())) {
			t.Fatalf("Retry-After %s after a %s delay", got, want)
		}
	}
	login(e.http.Client(), testPassword).expect(t, http.StatusOK, "admin while the attacker waits the cap")

	// A campaign over many addresses reaches the per-user ceiling: each
	// address that failed now waits the cap after one failure; the real
	// user's address, which has not failed, still logs in at once.
	e.advance(lim.MaxDelay)
	failures := 0
	for i := 3; failures < lim.UserFailures; i++ {
		c := e.from(fmt.Sprintf("127.0.0.%d", i))
		for range lim.FreeFailures - 1 {
			login(c, "wrong").expect(t, http.StatusUnauthorized, "a failure of the campaign")
			failures++
		}
	}
	last := e.from("127.0.0.250")
	login(last, "wrong").expect(t, http.StatusUnauthorized, "the campaign's first failure from a new address")
	r = login(last, "wrong").expect(t, http.StatusTooManyRequests, "the campaign's second failure from that address")
	if want := fmt.Sprint(int(lim.MaxDelay.Seconds())); r.header.Get("Retry-After") != want {
		t.Errorf("Retry-After %q under attack, want %s", r.header.Get("Retry-After"), want)
	}
	login(e.http.Client(), testPassword).expect(t, http.StatusOK, "admin under attack")
}

func TestDraftConcurrencyAndValidation(t *testing.T) {
	e := newEnv(t)
	e.do(e.admin, "POST", "/groups", apitypes.Group{Name: "edge"}).expect(t, http.StatusCreated, "create group")
	r := e.do(e.admin, "GET", "/groups/edge/draft", nil).expect(t, http.StatusOK, "empty draft")
	if r.header.Get("ETag") != `"0"` {
		t.Fatalf("ETag of a new draft %q", r.header.Get("ETag"))
	}
	e.do(e.admin, "PUT", "/groups/edge/draft", config("/a")).expect(t, http.StatusPreconditionRequired, "PUT without If-Match")
	r = e.do(e.admin, "PUT", "/groups/edge/draft", config("/a"), "If-Match", `"0"`, "Content-Type", "application/yaml").
		expect(t, http.StatusOK, "first PUT")
	if r.header.Get("ETag") != `"1"` {
		t.Fatalf("ETag after a PUT %q", r.header.Get("ETag"))
	}

	// Two editors read version 1; the first write wins, the second gets
	// 409 and nothing of it is stored.
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, path := range []string{"/b", "/c"} {
		wg.Go(func() {
			statuses[i] = e.do(e.admin, "PUT", "/groups/edge/draft", config(path), "If-Match", `"1"`).status
		})
	}
	wg.Wait()
	if !(statuses[0] == 200 && statuses[1] == 409 || statuses[0] == 409 && statuses[1] == 200) {
		t.Fatalf("concurrent PUTs: %v, want one 200 and one 409", statuses)
	}
	var d apitypes.Draft
	e.do(e.admin, "GET", "/groups/edge/draft", nil).expect(t, http.StatusOK, "draft").decode(t, &d)
	winner := map[bool]string{true: "/b", false: "/c"}[statuses[0] == 200]
	if d.Version != 2 || d.Config.Services[0].Routes[0].Paths[0] != winner {
		t.Fatalf("draft after the race: version %d, path %s, want 2 and %s", d.Version, d.Config.Services[0].Routes[0].Paths[0], winner)
	}

	// An invalid draft is stored (work in progress) but validates with
	// every error at its path — policy configurations too, checked by
	// their kinds — and does not deploy.
	bad := strings.Replace(config("nope"), "upstream: up", "upstream: missing", 1) +
		"global_policies:\n  - name: rate-limit\n    config: {limits: [{requests: 5, window: fortnight}]}\n"
	e.do(e.admin, "PUT", "/groups/edge/draft", bad, "If-Match", `"2"`).expect(t, http.StatusOK, "store invalid draft")
	var v apitypes.Validation
	e.do(e.admin, "POST", "/groups/edge/draft/validate", nil).expect(t, http.StatusOK, "validate").decode(t, &v)
	fields := map[string]bool{}
	for _, fe := range v.Errors {
		fields[fe.Field] = true
	}
	if v.Valid || !fields["services[0].upstream"] || !fields["services[0].routes[0].paths[0]"] ||
		!fields["global_policies[0].config.limits[0].window"] {
		t.Fatalf("validation %+v", v)
	}
	r = e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "bad"}).
		expect(t, http.StatusUnprocessableEntity, "deploy an invalid draft")
	var eb apitypes.ErrorBody
	r.decode(t, &eb)
	if eb.Error.Code != apitypes.CodeInvalidConfig || len(eb.Error.Errors) != len(v.Errors) {
		t.Errorf("deploy error %s", r.body)
	}
	e.do(e.admin, "GET", "/groups/edge/deployments/latest", nil).expect(t, http.StatusNotFound, "no deployment stored")

	// Strict decoding: unknown fields and wrong types name the field.
	r = e.do(e.admin, "PUT", "/groups/edge/draft", "services:\n  - name: s\n    upstrem: u\n", "If-Match", `"3"`).
		expect(t, http.StatusBadRequest, "unknown field")
	if !strings.Contains(string(r.body), "services[0].upstrem") {
		t.Errorf("unknown field error does not name it: %s", r.body)
	}
	r = e.do(e.admin, "POST", "/groups", `{"name":"x","labels":"env"}`).expect(t, http.StatusBadRequest, "wrong type")
	r.decode(t, &eb)
	if eb.Error.Field != "labels" {
		t.Errorf("wrong type error: %s", r.body)
	}
	r = e.do(e.admin, "POST", "/groups", `{"name":"x","colour":"red"}`).expect(t, http.StatusBadRequest, "unknown JSON field")
	r.decode(t, &eb)
	if eb.Error.Field != "colour" {
		t.Errorf("unknown JSON field error: %s", r.body)
	}
	e.do(e.admin, "POST", "/groups", `{"name":`).expect(t, http.StatusBadRequest, "malformed JSON")
	huge := `{"name":"x","description":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`
	e.do(e.admin, "POST", "/groups", huge).expect(t, http.StatusRequestEntityTooLarge, "oversized body")
}

func TestDeployDiffRollback(t *testing.T) {
	e := newEnv(t)
	e.group("edge", nil)
	var d1, d2, d3 apitypes.Deployment
	e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "first"}).
		expect(t, http.StatusCreated, "deploy 1").decode(t, &d1)
	e.do(e.admin, "PUT", "/groups/edge/draft/upstreams/up", deploy.Upstream{Targets: []deploy.Target{{Address: "127.0.0.1:9002"}}}).
		expect(t, http.StatusOK, "edit upstream")
	var diff apitypes.Diff
	e.do(e.admin, "GET", "/groups/edge/draft/diff", nil).expect(t, http.StatusOK, "draft diff").decode(t, &diff)
	if diff.From != "1" || len(diff.Changes) != 1 || diff.Changes[0].Fields[0].Path != "targets[0].address" {
		t.Fatalf("draft diff %+v", diff)
	}
	// draft_version pins what was reviewed.
	e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "stale", DraftVersion: 1}).
		expect(t, http.StatusConflict, "deploy a stale draft version")
	e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "second", DraftVersion: 2}).
		expect(t, http.StatusCreated, "deploy 2").decode(t, &d2)
	if d1.Number != 1 || d2.Number != 2 || d1.Checksum == d2.Checksum || d2.Author != "admin" || d2.Message != "second" {
		t.Fatalf("deployments %+v %+v", d1, d2)
	}

	// The stored deployment verifies with the domain's public key.
	dep := must[store.Deployment](t)(e.store.GetDeployment(bg, "edge", 2))
	signed := deploy.Deployment{Domain: "test", Group: "edge", Number: 2, Checksum: dep.Checksum, Config: dep.Config,
		Author: dep.Author, Message: dep.Message, CreatedAt: dep.CreatedAt, Signature: dep.Signature}
	if err := signed.Verify(e.pub, catalog.Checker{}); err != nil {
		t.Fatalf("deployment 2 does not verify: %v", err)
	}
	if base64.StdEncoding.EncodeToString(dep.Signature) != d2.Signature {
		t.Error("API shows another signature than the stored one")
	}

	e.do(e.admin, "GET", "/groups/edge/deployments/1/diff/2", nil).expect(t, http.StatusOK, "diff").decode(t, &diff)
	if len(diff.Changes) != 1 || diff.Changes[0].Kind != deploy.KindUpstream || diff.Changes[0].Name != "up" {
		t.Fatalf("diff 1→2 %+v", diff)
	}
	e.do(e.admin, "POST", "/groups/edge/deployments/1/rollback", apitypes.RollbackRequest{Message: "oops"}).
		expect(t, http.StatusCreated, "rollback").decode(t, &d3)
	if d3.Number != 3 || d3.RollbackOf != 1 || d3.Checksum != d1.Checksum {
		t.Fatalf("rollback %+v, want number 3 with deployment 1's checksum %s", d3, d1.Checksum)
	}
	e.do(e.admin, "POST", "/groups/edge/deployments/9/rollback", nil).expect(t, http.StatusNotFound, "rollback to a missing deployment")
	e.do(e.admin, "GET", "/groups/edge/deployments/x", nil).expect(t, http.StatusBadRequest, "bad number")
	var list []apitypes.Deployment
	e.do(e.admin, "GET", "/groups/edge/deployments", nil).expect(t, http.StatusOK, "list").decode(t, &list)
	if len(list) != 3 || list[0].Number != 3 {
		t.Fatalf("deployments %+v", list)
	}

	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?group=edge", nil).expect(t, http.StatusOK, "audit").decode(t, &entries)
	var actions []string
	for _, en := range entries {
		actions = append(actions, en.Action+":"+en.Result)
	}
	want := []string{"deployment.rollback:error", "deployment.rollback:ok", "deployment.create:ok", "deployment.create:error",
		"draft.upstreams.update:ok", "deployment.create:ok"}
	if strings.Join(actions, " ") != strings.Join(want, " ") {
		t.Errorf("audit of group edge:\n got %v\nwant %v", actions, want)
	}
}

// Secrets are write-only: never shown, kept when written back as
// "(redacted)", and never in the audit log.
func TestSecretsWriteOnly(t *testing.T) {
	e := newEnv(t)
	e.group("edge", nil)
	const secret = "alice-secret-key"
	r := e.do(e.admin, "GET", "/groups/edge/draft", nil).expect(t, http.StatusOK, "draft")
	if bytes.Contains(r.body, []byte(secret)) {
		t.Fatalf("draft shows a secret: %s", r.body)
	}
	var d apitypes.Draft
	r.decode(t, &d)
	if d.Config.Consumers[0].Credentials[0].Key != deploy.Redacted {
		t.Fatalf("credential reads %q", d.Config.Consumers[0].Credentials[0].Key)
	}
	// Write the redacted document back, with a route changed: the secret
	// stays.
	d.Config.Services[0].Routes[0].Paths = []string{"/z"}
	body := must[[]byte](t)(d.Config.Canonical())
	e.do(e.admin, "PUT", "/groups/edge/draft", body, "If-Match", `"1"`).expect(t, http.StatusOK, "write back")
	stored := must[store.Draft](t)(e.store.GetDraft(bg, "edge"))
	if stored.Config.Consumers[0].Credentials[0].Key != secret {
		t.Fatalf("secret after write-back: %q", stored.Config.Consumers[0].Credentials[0].Key)
	}
	// A placeholder with nothing to keep is refused, naming the field.
	r = e.do(e.admin, "POST", "/groups/edge/draft/consumers", deploy.Consumer{Name: "bob",
		Credentials: []deploy.Credential{{Type: "key", Key: deploy.Redacted}}}).expect(t, http.StatusBadRequest, "redacted without a secret")
	if !strings.Contains(string(r.body), "consumers[0].credentials[0].key") {
		t.Errorf("error does not name the field: %s", r.body)
	}
	e.do(e.admin, "PUT", "/groups/edge/draft/consumers/alice", deploy.Consumer{
		Credentials: []deploy.Credential{{Type: "key", Key: deploy.Redacted}}}).expect(t, http.StatusOK, "put consumer keeping its key")
	e.do(e.admin, "POST", "/groups/edge/deployments", nil).expect(t, http.StatusCreated, "deploy")
	stored = must[store.Draft](t)(e.store.GetDraft(bg, "edge"))
	if stored.Config.Consumers[0].Credentials[0].Key != secret {
		t.Fatalf("secret after consumer PUT: %q", stored.Config.Consumers[0].Credentials[0].Key)
	}
	for _, path := range []string{"/groups/edge/draft/consumers", "/groups/edge/draft/consumers/alice",
		"/groups/edge/deployments/latest", "/groups/edge/deployments/1/diff/1", "/audit?limit=1000"} {
		if r := e.do(e.admin, "GET", path, nil).expect(t, http.StatusOK, path); bytes.Contains(r.body, []byte(secret)) {
			t.Errorf("GET %s shows the secret: %s", path, r.body)
		}
	}
	// And the deployment itself holds it, for the gateways.
	dep := must[store.Deployment](t)(e.store.LatestDeployment(bg, "edge"))
	if !bytes.Contains(dep.Config, []byte(secret)) {
		t.Error("the deployment lost the secret")
	}
}

// Lists show what the caller may read; single objects out of scope are
// refused whether they exist or not.
func TestScopedVisibility(t *testing.T) {
	e := newEnv(t)
	must[store.Host](t)(e.store.CreateHost(bg, store.Host{Name: "h1"}))
	e.group("dev", map[string]string{"env": "dev"})
	e.group("prod", map[string]string{"env": "prod"})
	e.instance("dev")
	e.instance("prod")
	viewer := e.user("val", rbac.RoleViewer, store.Scope{Selector: map[string]string{"env": "dev"}})
	named := e.user("nina", rbac.RoleViewer, store.Scope{Groups: []string{"dev", "ghost"}})

	var groups []apitypes.Group
	e.do(viewer, "GET", "/groups", nil).expect(t, http.StatusOK, "groups").decode(t, &groups)
	if len(groups) != 1 || groups[0].Name != "dev" {
		t.Errorf("viewer of env=dev sees groups %+v", groups)
	}
	var ins []apitypes.Instance
	e.do(viewer, "GET", "/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &ins)
	if len(ins) != 1 || ins[0].Group != "dev" {
		t.Errorf("viewer of env=dev sees instances %+v", ins)
	}
	e.do(e.admin, "GET", "/groups?selector=env=prod", nil).expect(t, http.StatusOK, "selector").decode(t, &groups)
	if len(groups) != 1 || groups[0].Name != "prod" {
		t.Errorf("selector env=prod gives %+v", groups)
	}
	e.do(e.admin, "GET", "/groups?selector=env", nil).expect(t, http.StatusBadRequest, "bad selector")

	e.do(viewer, "GET", "/groups/prod", nil).expect(t, http.StatusForbidden, "existing group out of scope")
	e.do(viewer, "GET", "/groups/nope", nil).expect(t, http.StatusForbidden, "missing group out of scope")
	e.do(named, "GET", "/groups/ghost", nil).expect(t, http.StatusNotFound, "missing group bound by name")
	e.do(e.admin, "GET", "/groups/nope", nil).expect(t, http.StatusNotFound, "missing group for a domain admin")
	e.do(viewer, "GET", "/instances/nope", nil).expect(t, http.StatusForbidden, "missing instance for a scoped user")

	// Relabelling a group out of one's scope is refused.
	dev := e.user("dave", rbac.RoleDeployer, store.Scope{Selector: map[string]string{"env": "dev"}})
	e.do(dev, "PUT", "/groups/dev", apitypes.Group{Labels: map[string]string{"env": "prod"}}).
		expect(t, http.StatusForbidden, "relabel out of scope")
	e.do(dev, "PUT", "/groups/dev", apitypes.Group{Labels: map[string]string{"env": "dev"}}, "If-Match", `"7"`).
		expect(t, http.StatusConflict, "stale If-Match")
}

func TestInstanceStatus(t *testing.T) {
	e := newEnv(t)
	must[store.Host](t)(e.store.CreateHost(bg, store.Host{Name: "h1"}))
	e.group("edge", nil)
	e.deployed("edge")
	cur := must[store.Deployment](t)(e.store.LatestDeployment(bg, "edge"))
	names := []string{e.instance("edge"), e.instance("edge"), e.instance("edge"), e.instance("edge"), e.instance("edge")}
	beat := func(name string, ago time.Duration, n uint64, sum string) {
		e.srv.observe([]store.InstanceState{{Instance: name,
			LastHeartbeat: e.now.Add(-ago), AppliedDeployment: n, AppliedChecksum: sum, Ready: true}})
	}
	beat(names[0], time.Second, cur.Number, cur.Checksum)
	beat(names[1], time.Second, 0, "")
	beat(names[2], time.Minute, cur.Number, cur.Checksum)
	beat(names[3], 3*time.Hour, cur.Number, cur.Checksum)
	want := map[string]string{names[0]: status.Healthy, names[1]: status.OnlyHeartbeat, names[2]: status.LostConnection,
		names[3]: status.Offline, names[4]: status.Pending}
	var ins []apitypes.Instance
	e.do(e.admin, "GET", "/groups/edge/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &ins)
	for _, in := range ins {
		if in.Status != want[in.Name] {
			t.Errorf("%s: status %q, want %q", in.Name, in.Status, want[in.Name])
		}
	}
	e.do(e.admin, "GET", "/instances?status=Healthy", nil).expect(t, http.StatusOK, "by status").decode(t, &ins)
	if len(ins) != 1 || ins[0].Name != names[0] {
		t.Errorf("healthy instances %+v", ins)
	}
	var sum apitypes.GroupSummary
	e.do(e.admin, "GET", "/groups/edge/summary", nil).expect(t, http.StatusOK, "summary").decode(t, &sum)
	if sum.Instances != 5 || sum.ByStatus[status.Healthy] != 1 || sum.Rollout != "1/5" || sum.Complete || sum.CurrentDeployment != 1 {
		t.Errorf("summary %+v", sum)
	}

	// Seven days offline: removed, with an audit entry by "system".
	e.advance(7*24*time.Hour - 3*time.Hour + time.Minute)
	removed := must[[]string](t)(e.srv.RemoveOffline(bg))
	if len(removed) != 1 || removed[0] != names[3] {
		t.Fatalf("removed %v, want [%s]", removed, names[3])
	}
	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?user=system", nil).expect(t, http.StatusOK, "audit").decode(t, &entries)
	if len(entries) != 1 || entries[0].Action != "instance.remove" || entries[0].Target != "instance/"+names[3] {
		t.Errorf("removal audit %+v", entries)
	}

	// Port clashes on a host are refused.
	r := e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "clash", Group: "edge", Host: "h1",
		Listen: must[store.Instance](t)(e.store.GetInstance(bg, names[0])).Listen, StatusListen: ":1"}).
		expect(t, http.StatusConflict, "port clash")
	if !strings.Contains(string(r.body), names[0]) {
		t.Errorf("clash does not name the instance: %s", r.body)
	}
}

func TestRolesAndUsers(t *testing.T) {
	e := newEnv(t)
	e.do(e.admin, "PUT", "/roles/viewer", apitypes.Role{Permissions: []string{"*"}}).expect(t, http.StatusConflict, "change a built-in role")
	e.do(e.admin, "DELETE", "/roles/viewer", nil).expect(t, http.StatusConflict, "delete a built-in role")
	r := e.do(e.admin, "POST", "/roles", apitypes.Role{Name: "r", Permissions: []string{"group:read", "group:fly"}}).
		expect(t, http.StatusBadRequest, "unknown permission")
	if !strings.Contains(string(r.body), "permissions[1]") {
		t.Errorf("error does not name the permission: %s", r.body)
	}
	e.do(e.admin, "POST", "/users", apitypes.UserCreate{Name: "bob", Password: "short"}).expect(t, http.StatusBadRequest, "weak password")
	e.do(e.admin, "POST", "/users", apitypes.UserCreate{Name: "bob", Password: testPassword}).expect(t, http.StatusCreated, "create user")
	e.do(e.admin, "POST", "/bindings", apitypes.RoleBinding{User: "bob", Role: "viewer", Scope: apitypes.Scope{Domain: true, Groups: []string{"a"}}}).
		expect(t, http.StatusBadRequest, "two scopes")
	e.do(e.admin, "POST", "/bindings", apitypes.RoleBinding{User: "bob", Role: "viewer", Scope: apitypes.Scope{Domain: true}}).
		expect(t, http.StatusCreated, "bind")
	var login apitypes.LoginResponse
	e.do("", "POST", "/auth/login", apitypes.LoginRequest{User: "bob", Password: testPassword}).expect(t, http.StatusOK, "bob logs in").decode(t, &login)
	e.do(login.Token, "GET", "/hosts", nil).expect(t, http.StatusOK, "viewer reads hosts")
	e.do(login.Token, "GET", "/users", nil).expect(t, http.StatusForbidden, "viewer reads users")
	e.do(e.admin, "PATCH", "/users/bob", apitypes.UserUpdate{Disabled: ptr(true)}).expect(t, http.StatusOK, "disable bob")
	e.do(login.Token, "GET", "/hosts", nil).expect(t, http.StatusUnauthorized, "disabled user's token")
	e.do(e.admin, "PATCH", "/users/bob", apitypes.UserUpdate{Disabled: ptr(false)}).expect(t, http.StatusOK, "enable bob")
	e.do(login.Token, "GET", "/hosts", nil).expect(t, http.StatusUnauthorized, "token revoked by disabling")
	e.do(e.admin, "DELETE", "/users/admin", nil).expect(t, http.StatusBadRequest, "delete oneself")
	r = e.do(e.admin, "GET", "/users", nil).expect(t, http.StatusOK, "users")
	if bytes.Contains(r.body, []byte("$2a$")) || bytes.Contains(r.body, []byte("password")) {
		t.Errorf("user list shows password material: %s", r.body)
	}
}
