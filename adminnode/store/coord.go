package store

import (
	"context"
	"sync"
)

// Kinds of Change. A store shared by several admin nodes names the table
// (or bucket) a committed write touched; these are the ones the admin API
// tells apart.
const (
	// ChangeResync says that changes may have been missed (a lost
	// notification, a reconnection): re-read everything.
	ChangeResync = "resync"
	// ChangeInstanceStates is a batch of heartbeats written by an admin
	// node.
	ChangeInstanceStates = "instance_states"
)

// Change says that a write was committed to the store, possibly by
// another admin node. It is a signal to re-read, not a record of what was
// written: changes of one kind coalesce while the reader is behind.
type Change struct {
	Kind string
}

// Coordinator is what several admin nodes over one store need from it:
// wake-ups across them and a single holder of the background work. The
// PostgreSQL store implements it with LISTEN/NOTIFY and an advisory lock;
// the bbolt store, used by one admin node only, with no wake-ups (the
// admin node wakes its own queries) and a lease always held.
type Coordinator interface {
	// Shared reports whether other admin nodes may write the store.
	Shared() bool
	// Watch delivers the changes committed from now on until ctx ends,
	// when the channel is closed; node names the admin node watching
	// (AdminNodes lists it).
	Watch(ctx context.Context, node string) <-chan Change
	// Lease starts competing for the background lease under the name
	// holder (an admin node's name) until ctx ends, when it is let go.
	Lease(ctx context.Context, holder string) Lease
	// AdminNodes lists the names of the admin nodes watching the store,
	// sorted; LeaseHolder names the one holding the lease ("" if none).
	AdminNodes(ctx context.Context) ([]string, error)
	LeaseHolder(ctx context.Context) (string, error)
}

// Reachability is implemented by a store behind a network connection: it
// tells the store being out of reach (the connection refused, cut, or the
// database shutting down) from a statement that failed, so that the admin
// API can answer the first with a retryable 503 rather than a 500.
type Reachability interface {
	Unreachable(err error) bool
}

// Pinger is a store behind a network connection that can be away: Ping
// reports whether it answers now. The admin node asks it when a request
// failed for a reason of its own, to tell "the database is unreachable"
// (503, retry elsewhere) from an internal error (500).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Lease is the right to run the domain's background work (instance status
// removal, traffic roll-up and pruning): held by one admin node at a time.
type Lease interface {
	// Held reports whether this admin node holds the lease now.
	Held() bool
}

// heldLease is the bbolt store's lease: one admin node, always the holder.
type heldLease struct{}

func (heldLease) Held() bool { return true }

// boltCoord is the bbolt store's Coordinator state.
type boltCoord struct {
	mu     sync.Mutex
	holder string
}

var _ Coordinator = (*Bolt)(nil)

// Shared implements Coordinator: a bbolt file has one admin node.
func (b *Bolt) Shared() bool { return false }

// Watch implements Coordinator: the only admin node wakes its own queries
// when it writes, so the channel only closes when ctx ends.
func (b *Bolt) Watch(ctx context.Context, _ string) <-chan Change {
	ch := make(chan Change)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}

// Lease implements Coordinator: the only admin node always holds it.
func (b *Bolt) Lease(ctx context.Context, holder string) Lease {
	b.coord.mu.Lock()
	b.coord.holder = holder
	b.coord.mu.Unlock()
	return heldLease{}
}

// AdminNodes implements Coordinator: the lease's holder, if it took it.
func (b *Bolt) AdminNodes(ctx context.Context) ([]string, error) {
	h, err := b.LeaseHolder(ctx)
	if h == "" || err != nil {
		return []string{}, err
	}
	return []string{h}, nil
}

// LeaseHolder implements Coordinator.
func (b *Bolt) LeaseHolder(context.Context) (string, error) {
	b.coord.mu.Lock()
	defer b.coord.mu.Unlock()
	return b.coord.holder, nil
}
