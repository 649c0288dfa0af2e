package pgstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// exec runs sql on a connection of its own to dsn.
func exec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// terminate ends the backends of the connections named app, as a
// network failure or a crashed admin node would.
func terminate(t *testing.T, dsn, app string) {
	t.Helper()
	exec(t, dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app)
}

// watching returns B's watch, once it is known to be listening: a write
// through A has reached it.
func watching(t *testing.T, a, b *PG, node string) <-chan store.Change {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ch := b.Watch(wctx, node)
	n := 0
	waitfor.True(t, 10*time.Second, "the watch of "+node+" to deliver a change", func() bool {
		n++
		if _, err := a.CreateGroup(ctx, store.Group{Name: fmt.Sprintf("probe-%s-%d", node, n)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
	drain(ch)
	return ch
}

func drain(ch <-chan store.Change) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// next waits for B's next change; the bound only keeps a broken test from
// hanging.
func next(t *testing.T, ch <-chan store.Change, what string) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the watch ended", what)
		}
		return c
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no change delivered", what)
	}
	return store.Change{}
}

// A change committed through one admin node wakes the watch of another,
// and names what changed; a transaction rolled back wakes nobody.
func TestWatchAcrossAdminNodes(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	a, b := openAt(t, dsn), openAt(t, dsn)
	ch := watching(t, a, b, "b")

	start := time.Now()
	if _, err := a.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	c := next(t, ch, "group created through A")
	t.Logf("change through A seen by B after %s", time.Since(start))
	if c.Kind != "groups" {
		t.Errorf("change kind %q, want groups", c.Kind)
	}

	// A failed write (a duplicate group) changes nothing and says so.
	if _, err := a.CreateGroup(ctx, store.Group{Name: "edge"}); err == nil {
		t.Fatal("a second group edge was created")
	}
	waitfor.Holds(t, 3*time.Second, "no change after a failed write", func() (bool, string) {
		select {
		case c := <-ch:
			return false, "got " + c.Kind
		default:
			return true, ""
		}
	})

	nodes, err := a.AdminNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nodes, []string{"b"}) {
		t.Errorf("admin nodes %q, want [b]", nodes)
	}
}

// A notification that never arrives (its connection killed, or dropped)
// only delays the wake-up: the counter's re-check delivers a resync.
func TestWatchRecoversLostNotification(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	a, b := openAt(t, dsn), openAt(t, dsn)
	ch := watching(t, a, b, "b")

	// A change counted but not notified, as if the notification were
	// lost: the trigger notifies a table once per transaction.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('gatehouse.changed_groups', 'y', true)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO groups (name, doc) VALUES ('silent', '{"name":"silent"}')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if c := next(t, ch, "unnotified change"); c.Kind != store.ChangeResync {
		t.Errorf("change kind %q, want %q", c.Kind, store.ChangeResync)
	}
	t.Logf("unnotified change seen by B after %s", time.Since(start))

	// The listening connection killed; a change made before B listens
	// again is delivered once it does.
	terminate(t, dsn, watchApp+"b")
	if _, err := a.CreateGroup(ctx, store.Group{Name: "while-away"}); err != nil {
		t.Fatal(err)
	}
	next(t, ch, "change made while B's connection was down")
}

// The lease has one holder; when its connection dies another admin node
// takes it over within seconds, and the first gives it up.
func TestLeaseTakenOver(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	a, b := openAt(t, dsn), openAt(t, dsn)
	actx, stopA := context.WithCancel(ctx)
	defer stopA()
	la := a.Lease(actx, "a")
	waitfor.True(t, 10*time.Second, "A to hold the lease", la.Held)

	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	lb := b.Lease(bctx, "b")
	waitfor.Holds(t, 3*leaseEvery, "A alone to hold the lease", func() (bool, string) {
		return la.Held() && !lb.Held(), fmt.Sprintf("A %t, B %t", la.Held(), lb.Held())
	})
	holderIs(t, b, "a")

	terminate(t, dsn, leaseApp+"a")
	start := time.Now()
	waitfor.True(t, 10*time.Second, "B to take the lease", lb.Held)
	t.Logf("lease taken over by B after %s", time.Since(start))
	waitfor.True(t, 10*time.Second, "A to give the lease up", func() bool { return !la.Held() })
	holderIs(t, a, "b")

	// B stopping lets A, competing again, take it back.
	stopB()
	waitfor.True(t, 10*time.Second, "A to take the lease back", la.Held)
	holderIs(t, a, "a")
}

func holderIs(t *testing.T, s *PG, want string) {
	t.Helper()
	got, err := s.LeaseHolder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("lease holder %q, want %q", got, want)
	}
}

// While the database is away the lease is held by nobody (its holder
// gives it up when its check fails); once it is back an admin node holds
// it again and changes wake the other admin nodes again.
func TestCoordinationSurvivesDatabaseRestart(t *testing.T) {
	if pg == nil {
		t.Skip(pgtest.ErrNotInstalled)
	}
	// A server of its own: this test stops it.
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	dsn := srv.Database(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	ch := watching(t, a, b, "b")
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	la, lb := a.Lease(lctx, "a"), b.Lease(lctx, "b")
	waitfor.True(t, 10*time.Second, "one admin node to hold the lease", func() bool { return la.Held() != lb.Held() })

	srv.Halt()
	waitfor.True(t, 10*time.Second, "the lease given up with the database away", func() bool { return !la.Held() && !lb.Held() })
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 30*time.Second, "one admin node to hold the lease again", func() bool { return la.Held() != lb.Held() })
	drain(ch)
	if _, err := a.CreateGroup(ctx, store.Group{Name: "after-restart"}); err != nil {
		t.Fatal(err)
	}
	next(t, ch, "change after the database restarted")
}

// A late batch of an admin node does not set an instance's state back
// to an older heartbeat than another admin node wrote.
func TestInstanceStateKeepsTheLaterHeartbeat(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	a, b := openAt(t, dsn), openAt(t, dsn)
	if _, err := a.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateHost(ctx, store.Host{Name: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateInstance(ctx, store.Instance{Name: "i1", Group: "edge", Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 2, 15, 0, 0, 123456000, time.UTC)
	for _, step := range []struct {
		s    *PG
		at   time.Time
		want time.Time
	}{
		{a, t0, t0},
		{b, t0.Add(5 * time.Second), t0.Add(5 * time.Second)},
		{a, t0.Add(time.Second), t0.Add(5 * time.Second)}, // late
		{a, t0.Add(10 * time.Second), t0.Add(10 * time.Second)},
	} {
		if err := step.s.PutInstanceStates(ctx, []store.InstanceState{{Instance: "i1", LastHeartbeat: step.at}}); err != nil {
			t.Fatal(err)
		}
		sts, err := b.ListInstanceStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sts) != 1 || !sts[0].LastHeartbeat.Equal(step.want) {
			t.Errorf("after writing %s: states %+v, want the heartbeat of %s", step.at, sts, step.want)
		}
	}
}
