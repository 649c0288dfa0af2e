package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/adminnode/store/pgstore"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// pg is the package's PostgreSQL server, for the tests of several admin
// nodes; nil where it is not installed.
var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

// newPGPair is two admin nodes, A and B, over one PostgreSQL database:
// one domain, its keys and CA shared, each following the other's changes.
func newPGPair(t *testing.T) (a, b *env) {
	t.Helper()
	return newPGPairOn(t, pgtest.Need(t, pg))
}

// newPGPairOn is newPGPair over the database at dsn.
func newPGPairOn(t *testing.T, dsn string) (a, b *env) {
	t.Helper()
	pub, key, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	dom := store.Domain{Name: "test", SigningPublicKey: pub}
	now := time.Now().UTC().Truncate(time.Second)
	root, err := ca.New("test", now)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := seal.Parse(seal.NewKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	var follows sync.WaitGroup
	fctx, stop := context.WithCancel(bg)
	mk := func(name string, first bool) *env {
		st, err := pgstore.Open(bg, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if first {
			if err := st.InitDomain(bg, dom); err != nil {
				t.Fatal(err)
			}
			for _, r := range rbac.BuiltInRoles() {
				must[store.Role](t)(st.CreateRole(bg, r))
			}
		}
		e := &env{t: t, store: st, pub: pub, now: now, ca: root, settingsKey: sk}
		e.srv, err = New(Config{Store: st, Domain: dom, SigningKey: key, SettingsKey: sk, CA: root, CAFingerprint: root.Fingerprint(),
			PasswordCost: bcrypt.MinCost, Now: e.clockNow})
		if err != nil {
			t.Fatal(err)
		}
		e.http = httptest.NewServer(e.srv.Handler())
		t.Cleanup(e.http.Close)
		follows.Go(func() { e.srv.Follow(fctx, name) })
		return e
	}
	a, b = mk("a", true), mk("b", false)
	// Cleanups run last first: the follows end before the stores close.
	t.Cleanup(func() { stop(); follows.Wait() })
	a.admin = a.user("admin", rbac.RoleDomainAdmin, store.Scope{Domain: true})
	b.admin = b.token("admin")
	// Both follow: each sees the other's first write.
	waitfor.True(t, 10*time.Second, "both admin nodes to watch the store", func() bool {
		n, err := a.store.(store.Coordinator).AdminNodes(bg)
		return err == nil && slices.Equal(n, []string{"a", "b"})
	})
	return a, b
}

// answered reports whether a blocking query has answered, leaving its
// answer for the test.
func answered(ch chan reply) (bool, string) {
	select {
	case r := <-ch:
		ch <- r
		return true, fmt.Sprintf("answered %d: %s", r.status, r.body)
	default:
		return false, ""
	}
}

// A node manager attached to admin node B is answered at once when an
// operator changes its instances or deploys through admin node A; what
// it reports through A is seen through B within a heartbeat interval.
func TestBlockingQueriesAcrossAdminNodes(t *testing.T) {
	a, b := newPGPair(t)
	srvB := b.agentServer()
	cert := b.joinAs(srvB.URL, "h1")
	n := newNode(t, srvB.URL, b.ca, &cert)
	a.group("edge", nil)

	var ins apitypes.AgentInstances
	n.do("GET", "/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &ins)
	answer := make(chan reply, 1)
	go func() { answer <- n.do("GET", "/instances?wait=20s&index="+jsonIndex(ins.Index), nil) }()
	waitfor.Holds(t, 200*time.Millisecond, "the blocking query on B open", func() (bool, string) {
		done, state := answered(answer)
		return !done, state
	})
	start := time.Now()
	a.do(a.admin, "POST", "/instances", apitypes.Instance{Name: "i1", Group: "edge", Host: "h1"}).expect(t, http.StatusCreated, "instance through A")
	(<-answer).expect(t, http.StatusOK, "instances on B").decode(t, &ins)
	t.Logf("instance created through A answered on B after %s", time.Since(start))
	if len(ins.Instances) != 1 || ins.Instances[0].Name != "i1" {
		t.Fatalf("instances on B after the change through A: %+v", ins)
	}

	go func() { answer <- n.do("GET", "/groups/edge/deployment?wait=20s&index=0", nil) }()
	waitfor.Holds(t, 200*time.Millisecond, "the deployment query on B open", func() (bool, string) {
		done, state := answered(answer)
		return !done, state
	})
	start = time.Now()
	a.do(a.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "m"}).expect(t, http.StatusCreated, "deploy through A")
	var dep apitypes.AgentDeployment
	(<-answer).expect(t, http.StatusOK, "deployment on B").decode(t, &dep)
	t.Logf("deploy through A answered on B after %s", time.Since(start))
	if dep.Index != 1 || dep.Deployment == nil || dep.Deployment.Number != 1 {
		t.Fatalf("deployment on B: %+v", dep)
	}

	// The node manager moves to A and reports there: B shows it.
	srvA := a.agentServer()
	na := newNode(t, srvA.URL, a.ca, &cert)
	a.advance(sharedFlushEvery)
	b.advance(sharedFlushEvery)
	start = time.Now()
	na.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{
		{Name: "i1", Process: "running", AppliedDeployment: 1, AppliedChecksum: dep.Deployment.Checksum, Ready: true},
	}}).expect(t, http.StatusOK, "heartbeat through A")
	waitfor.Cond(t, 10*time.Second, "B to show the heartbeat A received", func() (bool, string) {
		var in apitypes.Instance
		b.do(b.admin, "GET", "/instances/i1", nil).expect(t, http.StatusOK, "instance on B").decode(t, &in)
		return in.Observed != nil && in.Observed.AppliedDeployment == 1, fmt.Sprintf("%+v", in.Observed)
	})
	t.Logf("heartbeat through A shown by B after %s", time.Since(start))
}

// The overview names the admin nodes and the one holding the lease.
func TestOverviewNamesAdminNodesAndLease(t *testing.T) {
	a, b := newPGPair(t)
	lctx, cancel := context.WithCancel(bg)
	defer cancel()
	lease := a.store.(store.Coordinator).Lease(lctx, "a")
	waitfor.True(t, 10*time.Second, "A to hold the lease", lease.Held)
	var o apitypes.Overview
	b.do(b.admin, "GET", "/overview", nil).expect(t, http.StatusOK, "overview on B").decode(t, &o)
	if !slices.Equal(o.AdminNodes, []string{"a", "b"}) || o.LeaseHolder != "a" {
		t.Errorf("overview on B: admin nodes %q, lease holder %q; want [a b] and a", o.AdminNodes, o.LeaseHolder)
	}
	if want := (apitypes.OverviewDatabase{Kind: "postgres", Reachable: true}); o.Database != want {
		t.Errorf("overview on B: database %+v, want %+v", o.Database, want)
	}
}

// With the database away, an admin node answers reads and writes alike
// with a clear 503 naming the database, and a write it refused left
// nothing behind once the database is back.
func TestDatabaseAwayAnswers503(t *testing.T) {
	if pg == nil {
		t.Skip(pgtest.ErrNotInstalled)
	}
	// A server of its own: this test stops it.
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop) // after the database is dropped: cleanups run last first
	a, b := newPGPairOn(t, srv.Database(t))
	a.group("edge", nil)

	srv.Halt()
	for _, c := range []struct {
		name, method, path string
		body               any
	}{
		{"overview", "GET", "/overview", nil},
		{"read", "GET", "/groups/edge", nil},
		{"write", "POST", "/groups", apitypes.Group{Name: "while-away"}},
	} {
		for node, e := range map[string]*env{"a": a, "b": b} {
			r := e.do(e.admin, c.method, c.path, c.body)
			var body apitypes.ErrorBody
			r.decode(t, &body)
			if r.status != http.StatusServiceUnavailable || body.Error.Code != apitypes.CodeUnavailable || r.header.Get("Retry-After") == "" {
				t.Errorf("%s on %s with the database away: %d %s, want 503 %s", c.name, node, r.status, r.body, apitypes.CodeUnavailable)
			}
		}
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	// The pool finds the database again on the next request.
	waitfor.True(t, 10*time.Second, "the overview back on A", func() bool {
		return a.do(a.admin, "GET", "/overview", nil).status == http.StatusOK
	})
	b.do(b.admin, "GET", "/groups/while-away", nil).expect(t, http.StatusNotFound, "the group refused while the database was away")
	b.do(b.admin, "GET", "/groups/edge", nil).expect(t, http.StatusOK, "the group made before")
}

// A login through one admin node works through the other, and a token
// revoked or a logout through one is refused by the other at once: both
// read them from the store on every request.
func TestLoginsAndTokensAcrossAdminNodes(t *testing.T) {
	a, b := newPGPair(t)
	var login apitypes.LoginResponse
	a.do("", "POST", "/auth/login", apitypes.LoginRequest{User: "admin", Password: testPassword}).
		expect(t, http.StatusOK, "login through A").decode(t, &login)
	b.do(login.Token, "GET", "/overview", nil).expect(t, http.StatusOK, "A's login used on B")

	var tok apitypes.TokenCreated
	b.do(login.Token, "POST", "/tokens", map[string]string{"name": "ci", "ttl": "1h"}).
		expect(t, http.StatusCreated, "API token through B").decode(t, &tok)
	a.do(tok.Secret, "GET", "/overview", nil).expect(t, http.StatusOK, "B's API token used on A")
	b.do(tok.Secret, "GET", "/overview", nil).expect(t, http.StatusOK, "B's API token used on B")
	a.do(login.Token, "DELETE", "/tokens/"+tok.ID, nil).expect(t, http.StatusNoContent, "revoke through A")
	b.do(tok.Secret, "GET", "/overview", nil).expect(t, http.StatusUnauthorized, "revoked token on B")

	b.do(login.Token, "POST", "/auth/logout", nil).expect(t, http.StatusNoContent, "logout through B")
	a.do(login.Token, "GET", "/overview", nil).expect(t, http.StatusUnauthorized, "logged-out token on A")
}

// A node manager's certificate that B passed is refused by B once its
// host is deleted through A: what B remembers of the certificates it
// passed lasts until a change, A's changes included.
func TestHostDeletedThroughOtherAdminNode(t *testing.T) {
	a, b := newPGPair(t)
	srvB := b.agentServer()
	cert := b.joinAs(srvB.URL, "h1")
	n := newNode(t, srvB.URL, b.ca, &cert)
	// The second answer is from what B remembers of the first.
	for range 2 {
		n.do("GET", "/instances?wait=0s", nil).expect(t, http.StatusOK, "instances on B")
	}
	a.do(a.admin, "DELETE", "/hosts/h1", nil).expect(t, http.StatusNoContent, "delete host through A")
	waitfor.Cond(t, 10*time.Second, "B to refuse the deleted host's certificate", func() (bool, string) {
		r := n.do("GET", "/instances?wait=0s", nil)
		return r.status == http.StatusForbidden, fmt.Sprintf("%d %s", r.status, r.body)
	})
}
