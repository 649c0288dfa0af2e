package api

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// The runbook of docs/admin-node.md, on real servers: a primary with a
// synchronous streaming standby, two admin nodes whose connection string
// names both with target_session_attrs=read-write. The primary is lost:
// the admin nodes answer 503 until the standby is promoted, then carry on
// over it without a restart, with every deployment they acknowledged.
func TestStandbyPromotedUnderAdminNode(t *testing.T) {
	if pg == nil {
		t.Skip(pgtest.ErrNotInstalled)
	}
	primary, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(primary.Stop)
	standby, err := primary.StartStandby()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standby.Stop)

	sql := func(srv *pgtest.Server, stmts ...string) {
		t.Helper()
		conn, err := pgx.Connect(bg, srv.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(bg)
		for _, s := range stmts {
			if _, err := conn.Exec(bg, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	// Commits wait for the standby: what an admin node acknowledged
	// survives the promotion.
	sql(primary, "CREATE DATABASE gatehouse", "ALTER SYSTEM SET synchronous_standby_names = '*'", "SELECT pg_reload_conf()")
	waitfor.True(t, 30*time.Second, "the standby streaming synchronously", func() bool {
		conn, err := pgx.Connect(bg, primary.DSN("postgres"))
		if err != nil {
			return false
		}
		defer conn.Close(bg)
		var n int
		err = conn.QueryRow(bg, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'").Scan(&n)
		return err == nil && n == 1
	})
	// The test servers run with synchronous_commit off on their command
	// line; the admin nodes' sessions turn it on, as a production
	// server's default is.
	dsn := fmt.Sprintf("host=%s,%s port=5432,5432 user=postgres dbname=gatehouse sslmode=disable "+
		"target_session_attrs=read-write connect_timeout=5 synchronous_commit=on", primary.Host(), standby.Host())
	a, b := newPGPairOn(t, dsn)
	a.group("edge", nil)
	deploy := func(e *env, what string) apitypes.Deployment {
		t.Helper()
		var d apitypes.Deployment
		e.do(e.admin, "POST", "/groups/edge/deployments", map[string]any{"message": what, "force": true}).
			expect(t, http.StatusCreated, what).decode(t, &d)
		return d
	}
	first := deploy(a, "before the primary is lost")

	primary.Halt()
	r := b.do(b.admin, "GET", "/groups/edge", nil)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("B with the primary lost and the standby not promoted: %d %s, want 503", r.status, r.body)
	}

	sql(standby, "SELECT pg_promote()")
	waitfor.True(t, 30*time.Second, "B over the promoted standby", func() bool {
		return b.do(b.admin, "GET", "/groups/edge", nil).status == http.StatusOK
	})
	var got apitypes.Deployment
	b.do(b.admin, "GET", fmt.Sprintf("/groups/edge/deployments/%d", first.Number), nil).
		expect(t, http.StatusOK, "the deployment acknowledged before the promotion").decode(t, &got)
	if got.Checksum != first.Checksum {
		t.Errorf("deployment %d after the promotion has checksum %s, want %s", first.Number, got.Checksum, first.Checksum)
	}
	waitfor.True(t, 30*time.Second, "A over the promoted standby", func() bool {
		return a.do(a.admin, "GET", "/groups/edge", nil).status == http.StatusOK
	})
	if next := deploy(a, "after the promotion"); next.Number != first.Number+1 {
		t.Errorf("deploy after the promotion is #%d, want #%d", next.Number, first.Number+1)
	}
	// The watchers found the new primary too: both admin nodes are listed.
	waitfor.True(t, 30*time.Second, "both admin nodes watching the promoted standby", func() bool {
		var o apitypes.Overview
		r := b.do(b.admin, "GET", "/overview", nil)
		if r.status != http.StatusOK {
			return false
		}
		r.decode(t, &o)
		return slices.Equal(o.AdminNodes, []string{"a", "b"}) && o.Database.Reachable
	})
}
