package storetest

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

const domainName = "prod"

// signWith is the API's build step for real: the draft validated, encoded,
// checksummed and signed with key for the number the store gives.
func signWith(key ed25519.PrivateKey, author string) func(d store.Draft, number uint64) (store.Deployment, error) {
	return func(d store.Draft, number uint64) (store.Deployment, error) {
		dep, err := deploy.NewDeployment(domainName, d.Group, number, &d.Config, author, "", time.Now(), nil)
		if err != nil {
			return store.Deployment{}, err
		}
		dep.Sign(key)
		return store.Deployment{Checksum: dep.Checksum, Config: dep.Config, Signature: dep.Signature,
			Author: dep.Author, Message: dep.Message, CreatedAt: dep.CreatedAt}, nil
	}
}

// resignWith builds a rollback: src's configuration signed for its new
// number.
func resignWith(key ed25519.PrivateKey, author string) func(src store.Deployment, number uint64) (store.Deployment, error) {
	return func(src store.Deployment, number uint64) (store.Deployment, error) {
		dep := deploy.Deployment{Domain: domainName, Group: src.Group, Number: number, Checksum: src.Checksum,
			Config: src.Config, Author: author, CreatedAt: time.Now().UTC()}
		dep.Sign(key)
		return store.Deployment{Checksum: dep.Checksum, Config: dep.Config, Signature: dep.Signature,
			Author: dep.Author, CreatedAt: dep.CreatedAt}, nil
	}
}

// verify checks a stored deployment as a gateway does: its configuration
// against its checksum, and its signature over what is stored.
func verify(d store.Deployment, pub ed25519.PublicKey) error {
	dep := deploy.Deployment{Domain: domainName, Group: d.Group, Number: d.Number, Checksum: d.Checksum,
		Config: d.Config, Author: d.Author, Message: d.Message, CreatedAt: d.CreatedAt, Signature: d.Signature}
	return dep.Verify(pub, nil)
}

// Writers edit one group's draft and deploy it at the same time, others
// roll back: the deployments are numbered 1..n without gap or duplicate,
// each is signed over exactly what was stored, and each freeze stored the
// configuration its writer wrote.
func testConcurrentDeploysSigned(t *testing.T, open Opener) {
	s := open(t)
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	d := must[store.Draft](t)(s.PutDraft(ctx, "edge", cfg("first"), 0, "ann"))
	must[store.Deployment](t)(s.Freeze(ctx, "edge", d.Version, signWith(key, "first")))

	const writers, deploysEach, rollbacks = 6, 4, 6
	var wg sync.WaitGroup
	var retries atomic.Int64
	errs := make(chan error, writers*deploysEach+rollbacks)
	for w := range writers {
		wg.Go(func() {
			for n := range deploysEach {
				author := fmt.Sprintf("w%d-%d", w, n)
				for attempt := 0; ; attempt++ {
					if attempt == 1000 {
						errs <- fmt.Errorf("%s: no deploy after 1000 attempts", author)
						return
					}
					cur, err := s.GetDraft(ctx, "edge")
					if err != nil {
						errs <- err
						return
					}
					mine, err := s.PutDraft(ctx, "edge", cfg(author), cur.Version, author)
					if errors.Is(err, store.ErrConflict) {
						retries.Add(1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					dep, err := s.Freeze(ctx, "edge", mine.Version, signWith(key, author))
					if errors.Is(err, store.ErrConflict) {
						retries.Add(1)
						continue // another writer's draft came in between
					}
					if err != nil {
						errs <- err
						return
					}
					mineCfg := cfg(author)
					if want, err := mineCfg.Canonical(); err != nil || !slices.Equal(dep.Config, want) {
						errs <- fmt.Errorf("%s: deployment %d holds another writer's configuration", author, dep.Number)
					}
					break
				}
			}
		})
	}
	for r := range rollbacks {
		wg.Go(func() {
			if _, err := s.Rollback(ctx, "edge", 1, resignWith(key, fmt.Sprint("rollback", r))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	deps := must[[]store.Deployment](t)(s.ListDeployments(ctx, "edge"))
	want := 1 + writers*deploysEach + rollbacks
	if len(deps) != want {
		t.Fatalf("%d deployments, want %d", len(deps), want)
	}
	authors := map[string]bool{}
	for i, dep := range deps {
		if dep.Number != uint64(want-i) {
			t.Fatalf("deployment numbers not consecutive: position %d holds %d, want %d", i, dep.Number, want-i)
		}
		if err := verify(dep, pub); err != nil {
			t.Errorf("deployment %d (%s): %v", dep.Number, dep.Author, err)
		}
		if authors[dep.Author] {
			t.Errorf("author %s deployed twice", dep.Author)
		}
		authors[dep.Author] = true
		if dep.RollbackOf == 1 {
			first := must[store.Deployment](t)(s.GetDeployment(ctx, "edge", 1))
			if !slices.Equal(dep.Config, first.Config) {
				t.Errorf("rollback %d does not hold deployment 1's configuration", dep.Number)
			}
		}
	}
	t.Logf("%d deployments, %d retries on conflict", want, retries.Load())
}

// What a deployment stores reads back byte for byte: its configuration
// and template (which its checksum and signature cover), its source and
// its times.
func testDeploymentBytesExact(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	d := must[store.Draft](t)(s.PutDraft(ctx, "edge", cfg("a"), 0, "ann"))
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	stored := must[store.Deployment](t)(s.Freeze(ctx, "edge", d.Version, func(store.Draft, uint64) (store.Deployment, error) {
		return store.Deployment{
			Config:    []byte("{ \"upstreams\" : [ ] ,\n\t\"x\":\"\\u00e9\u00e9\" }"),
			Template:  []byte{0, 1, 2, 255},
			Checksum:  "sha256:00",
			Signature: []byte{9, 8, 7},
			Author:    "ann",
			Message:   "exact",
			CreatedAt: at,
			Source:    &store.DeploymentSource{Domain: "dev", Group: "edge", Deployment: 7, Checksum: "sha256:01"},
		}, nil
	}))
	for name, got := range map[string]store.Deployment{
		"get":    must[store.Deployment](t)(s.GetDeployment(ctx, "edge", stored.Number)),
		"latest": must[store.Deployment](t)(s.LatestDeployment(ctx, "edge")),
		"list":   must[[]store.Deployment](t)(s.ListDeployments(ctx, "edge"))[0],
	} {
		if !reflect.DeepEqual(got, stored) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, stored)
		}
	}
}

// Audit entries appended by concurrent writers get distinct numbers
// 1..n, and a reader never sees a number before all the lower ones: a
// page read by Seq misses no entry that commits later.
func testAuditConcurrentWriters(t *testing.T, open Opener) {
	s := open(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			list, err := s.ListAudit(ctx, store.AuditFilter{})
			if err != nil {
				readerErr <- err
				return
			}
			for i, e := range list {
				if want := uint64(len(list) - i); e.Seq != want {
					readerErr <- fmt.Errorf("a reader saw %d entries with seq %d at position %d: a gap that a later commit fills", len(list), e.Seq, i)
					return
				}
			}
		}
	}()
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e, err := s.AppendAudit(ctx, store.AuditEntry{User: fmt.Sprint("w", w), Action: fmt.Sprint("a", i), Result: store.AuditOK})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- e.Seq
			}
		})
	}
	wg.Wait()
	close(done)
	close(seqs)
	if err := <-readerErr; err != nil {
		t.Error(err)
	}
	var got []uint64
	for seq := range seqs {
		got = append(got, seq)
	}
	slices.Sort(got)
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("seqs %v: want 1..%d, each once", got, writers*each)
		}
	}
	list := must[[]store.AuditEntry](t)(s.ListAudit(ctx, store.AuditFilter{}))
	for i := 1; i < len(list); i++ {
		if list[i].Seq >= list[i-1].Seq {
			t.Fatalf("audit list not strictly decreasing at %d: %d after %d", i, list[i].Seq, list[i-1].Seq)
		}
	}
}

// Concurrent joins with one token: exactly one uses it, token after
// token.
func testJoinTokenUsedOnce(t *testing.T, open Opener) {
	s := open(t)
	must[store.Host](t)(s.CreateHost(ctx, store.Host{Name: "h1"}))
	const tokens, joins = 8, 10
	for range tokens {
		tok := must[store.JoinToken](t)(s.CreateJoinToken(ctx, store.JoinToken{Host: "h1", SecretHash: "x", ExpiresAt: t0.Add(time.Hour)}))
		errs := make([]error, joins)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range joins {
			wg.Go(func() {
				<-start
				_, errs[i] = s.UseJoinToken(ctx, tok.ID, t0, func(store.JoinToken) error { return nil })
			})
		}
		close(start)
		wg.Wait()
		used := 0
		for _, err := range errs {
			switch {
			case err == nil:
				used++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("join: %v", err)
			}
		}
		if used != 1 {
			t.Fatalf("token used %d times, want once (%v)", used, errs)
		}
	}
}

// An audit entry is kept whatever text it carries (a failed login's user
// name is what the client sent, NUL included), reads back exactly, and
// filters match it exactly.
func testAuditKeepsAnyText(t *testing.T, open Opener) {
	s := open(t)
	odd := []string{"ann\x00x", `ann\0x`, `ann\\0x`, "ann\\\x00x"}
	for _, user := range odd {
		must[store.AuditEntry](t)(s.AppendAudit(ctx, store.AuditEntry{User: user, Action: "login", Detail: "d\x00" + user, Result: store.AuditDenied}))
	}
	for _, user := range odd {
		got := must[[]store.AuditEntry](t)(s.ListAudit(ctx, store.AuditFilter{User: user}))
		if len(got) != 1 || got[0].User != user || got[0].Detail != "d\x00"+user {
			t.Errorf("entries of user %q: %+v", user, got)
		}
	}
}
