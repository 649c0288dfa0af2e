package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/backup"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/backupfile"
	"github.com/gatehouse/gatehouse/deploy"
)

// Backups taken while deploys go on are whole, signed by the domain key,
// restore into an empty store with every deployment they hold intact,
// and are audited with their checksum.
func TestBackupWhileDeploying(t *testing.T) {
	e := newEnv(t)
	e.group("edge", nil)
	e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "first"}).expect(t, http.StatusCreated, "deploy")

	var stop atomic.Bool
	var wg sync.WaitGroup
	var deployed atomic.Int64
	writerDone := make(chan struct{})
	wg.Go(func() {
		defer close(writerDone)
		for i := 0; !stop.Load(); i++ {
			r := e.do(e.admin, "PUT", "/groups/edge/draft/upstreams/up", deploy.Upstream{Targets: []deploy.Target{{Address: "127.0.0.1:" + strconv.Itoa(9000+i%1000)}}})
			if r.status != http.StatusOK {
				t.Errorf("edit upstream: %d %s", r.status, r.body)
				return
			}
			if r := e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "more"}); r.status != http.StatusCreated {
				t.Errorf("deploy: %d %s", r.status, r.body)
				return
			}
			deployed.Add(1)
		}
	})
	var names []string
	for deployed.Load() < 3 || len(names) < 3 {
		select {
		case <-writerDone:
			t.Fatal("the writer stopped")
		default:
		}
		r := e.do(e.admin, "POST", "/backup", nil).expect(t, http.StatusOK, "backup")
		_, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
		if err != nil || filepath.Ext(params["filename"]) != backupfile.Suffix {
			t.Fatalf("backup named by %q", r.header.Get("Content-Disposition"))
		}
		names = append(names, params["filename"])
		dst, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := backup.Restore(bg, bytes.NewReader(r.body), dst, backupfile.Expect{Domain: "test", Key: e.pub})
		if err != nil {
			t.Fatal(err)
		}
		deps := must[[]store.Deployment](t)(dst.ListDeployments(bg, "edge"))
		if len(deps) != res.Counts[store.KindDeployment] || len(deps) == 0 {
			t.Fatalf("restored %d deployments, the backup says %d", len(deps), res.Counts[store.KindDeployment])
		}
		for _, d := range deps {
			orig := must[store.Deployment](t)(e.store.GetDeployment(bg, "edge", d.Number))
			if !bytes.Equal(orig.Config, d.Config) || !bytes.Equal(orig.Signature, d.Signature) || orig.Checksum != d.Checksum {
				t.Fatalf("deployment %d restored differently", d.Number)
			}
		}
		dst.Close()
	}
	stop.Store(true)
	wg.Wait()

	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?action=domain.backup", nil).expect(t, http.StatusOK, "audit").decode(t, &entries)
	if len(entries) != len(names) || entries[0].Result != store.AuditOK || entries[0].Target != names[len(names)-1] {
		t.Fatalf("audit of %d backups: %+v", len(names), entries)
	}
}

// failingSnapshot is a store whose snapshot fails after some records, as
// a store that goes away in the middle of a backup.
type failingSnapshot struct {
	store.Store
	after int
}

var errSnapshotGone = errors.New("the store went away")

func (f failingSnapshot) Snapshot(ctx context.Context, emit func(store.Item) error) error {
	n := 0
	return f.Store.Snapshot(ctx, func(it store.Item) error {
		if n++; n > f.after {
			return errSnapshotGone
		}
		return emit(it)
	})
}

// A backup that fails under way is not answered as a whole one: the
// connection is cut, and the audit entry says it failed, with the cause.
func TestBackupFailureCutsTheAnswer(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		name := fmt.Sprintf("g%d", i)
		e.group(name, nil)
		e.do(e.admin, "POST", "/groups/"+name+"/deployments", apitypes.DeployRequest{Message: "first"}).expect(t, http.StatusCreated, "deploy")
	}
	srv, err := New(Config{Store: failingSnapshot{Store: e.store, after: 10}, Domain: must[store.Domain](t)(e.store.GetDomain(bg)),
		SigningKey: e.srv.key, SettingsKey: e.settingsKey, CA: e.ca, Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	req, err := http.NewRequest("POST", hs.URL+"/api/v1/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := hs.Client().Do(req)
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("a failed backup was answered %d with a whole body of %d bytes", resp.StatusCode, len(body))
		}
	}
	entries := must[[]store.AuditEntry](t)(e.store.ListAudit(bg, store.AuditFilter{Action: "domain.backup"}))
	if len(entries) != 1 || entries[0].Result != store.AuditError || !strings.Contains(entries[0].Detail, errSnapshotGone.Error()) {
		t.Fatalf("audit of the failed backup: %+v", entries)
	}
}
