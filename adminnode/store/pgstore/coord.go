package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Timing of the coordination of admin nodes.
const (
	// recheckEvery is how often a watcher compares the change counter
	// with the last notification it had: the longest a lost
	// notification delays a wake-up.
	recheckEvery = 2 * time.Second
	// leaseEvery is how often the lease is tried for, or its connection
	// checked while held: a dead holder's lease is taken over within
	// about that much once PostgreSQL has closed its connection.
	leaseEvery = time.Second
	// retryEvery spaces attempts to connect again.
	retryEvery = time.Second
	// connectTimeout bounds a dedicated connection's start.
	connectTimeout = 5 * time.Second
)

// changesChannel is the channel migration 0003's triggers notify.
const changesChannel = "gatehouse_changes"

// leaseKey is the session advisory lock of the background lease; below
// 2^31, so that pg_locks shows it as objid with classid 0.
const leaseKey = 0x4c454153 // "LEAS"

// Names of the dedicated connections, as pg_stat_activity shows them:
// AdminNodes and LeaseHolder read them there.
const (
	watchApp = "gatehouse-admin:"
	leaseApp = "gatehouse-lease:"
)

var _ store.Coordinator = (*PG)(nil)

// Shared implements store.Coordinator: any number of admin nodes may use
// the database.
func (p *PG) Shared() bool { return true }

var _ store.Pinger = (*PG)(nil)

// Ping implements store.Pinger.
func (p *PG) Ping(ctx context.Context) error {
	if err := p.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return nil
}

// connect opens a connection of its own (LISTEN and session locks need
// one that stays), named app in pg_stat_activity, with params.
func (p *PG) connect(ctx context.Context, app string, params map[string]string) (*pgx.Conn, error) {
	cfg := p.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = app
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	// A database that does not answer is tried again later, not waited
	// on for the system's TCP timeout.
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return pgx.ConnectConfig(cctx, cfg)
}

// leaseKeepalive has the server probe the lease connection over TCP after
// 5 s of silence, every second, 3 times: the lock of an admin node whose
// host vanished from the network is released within about 8 s, rather
// than after the system's default of hours. The holder itself stops
// within about 2 s of losing the database (its check times out), so it
// has let go before another can take the lock.
func leaseKeepalive() map[string]string {
	return map[string]string{
		"tcp_keepalives_idle":     "5",
		"tcp_keepalives_interval": "1",
		"tcp_keepalives_count":    "3",
	}
}

// Watch implements store.Coordinator with LISTEN on a dedicated
// connection. Every recheckEvery, and after connecting again, the change
// counter is compared with the last notification's: a change committed
// but not notified (a connection lost, a notification dropped) is
// delivered as store.ChangeResync.
func (p *PG) Watch(ctx context.Context, node string) <-chan store.Change {
	ch := make(chan store.Change, 16)
	go func() {
		defer close(ch)
		w := watcher{p: p, ch: ch, app: watchApp + node, seen: -1}
		for ctx.Err() == nil {
			w.listen(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(retryEvery):
			}
		}
	}()
	return ch
}

type watcher struct {
	p   *PG
	ch  chan<- store.Change
	app string
	// seen is the counter of the last change delivered, -1 before the
	// first connection.
	seen int64
}

func (w *watcher) send(ctx context.Context, kind string) bool {
	select {
	case w.ch <- store.Change{Kind: kind}:
		return true
	case <-ctx.Done():
		return false
	}
}

// listen watches on one connection until it fails or ctx ends.
func (w *watcher) listen(ctx context.Context) {
	conn, err := w.p.connect(ctx, w.app, nil)
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return
	}
	if !w.recheck(ctx, conn) {
		return
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, recheckEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			table, count, _ := strings.Cut(n.Payload, ":")
			if c, err := strconv.ParseInt(count, 10, 64); err == nil && c > w.seen {
				w.seen = c
			}
			if !w.send(ctx, table) {
				return
			}
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			if !w.recheck(ctx, conn) {
				return
			}
		default:
			return
		}
	}
}

// recheck reads the change counter and delivers store.ChangeResync when
// it moved past the last change delivered (the first time: never).
func (w *watcher) recheck(ctx context.Context, conn *pgx.Conn) bool {
	var n int64
	// Bounded, so that a database gone silent is left for a new
	// connection rather than waited on.
	qctx, cancel := context.WithTimeout(ctx, recheckEvery)
	defer cancel()
	if err := conn.QueryRow(qctx, "SELECT n FROM change_counter WHERE id = 1").Scan(&n); err != nil {
		return false
	}
	moved := w.seen >= 0 && n > w.seen
	w.seen = max(w.seen, n)
	if moved {
		return w.send(ctx, store.ChangeResync)
	}
	return true
}

// pgLease is a lease competed for on a dedicated connection.
type pgLease struct{ held atomic.Bool }

func (l *pgLease) Held() bool { return l.held.Load() }

// Lease implements store.Coordinator with a session advisory lock, tried
// every leaseEvery on a connection of its own: PostgreSQL releases it
// when that connection ends, whether its admin node stopped, died or lost
// the network. While held, the connection is checked at the same pace;
// a failed check gives the lease up at once.
func (p *PG) Lease(ctx context.Context, holder string) store.Lease {
	l := &pgLease{}
	go func() {
		for ctx.Err() == nil {
			p.holdLease(ctx, holder, l)
			l.held.Store(false)
			select {
			case <-ctx.Done():
			case <-time.After(retryEvery):
			}
		}
	}()
	return l
}

// holdLease competes for the lease on one connection until it fails or
// ctx ends.
func (p *PG) holdLease(ctx context.Context, holder string, l *pgLease) {
	conn, err := p.connect(ctx, leaseApp+holder, leaseKeepalive())
	if err != nil {
		return
	}
	// Closing the connection releases the lock.
	defer conn.Close(context.WithoutCancel(ctx))
	t := time.NewTicker(leaseEvery)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, leaseEvery)
		if l.held.Load() {
			_, err = conn.Exec(cctx, "SELECT 1")
		} else {
			var got bool
			err = conn.QueryRow(cctx, "SELECT pg_try_advisory_lock($1)", leaseKey).Scan(&got)
			l.held.Store(err == nil && got)
		}
		cancel()
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// AdminNodes implements store.Coordinator: the admin nodes with a
// watching connection to this database.
func (p *PG) AdminNodes(ctx context.Context) ([]string, error) {
	rows, err := p.pool.Query(ctx, `SELECT DISTINCT substr(application_name, $1) FROM pg_stat_activity
		WHERE datname = current_database() AND starts_with(application_name, $2)`, len(watchApp)+1, watchApp)
	if err != nil {
		return nil, fmt.Errorf("list admin nodes: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list admin nodes: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// LeaseHolder implements store.Coordinator: the name of the connection
// holding the lease's advisory lock.
func (p *PG) LeaseHolder(ctx context.Context) (string, error) {
	var app string
	err := p.pool.QueryRow(ctx, `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, leaseKey).Scan(&app)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the lease holder: %w", err)
	}
	return strings.TrimPrefix(app, leaseApp), nil
}
