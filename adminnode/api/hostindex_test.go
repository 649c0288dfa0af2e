package api

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// countingStore counts the reads of every instance.
type countingStore struct {
	store.Store
	lists atomic.Int64
}

func (c *countingStore) ListInstances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, error) {
	c.lists.Add(1)
	return c.Store.ListInstances(ctx, f)
}

// The instance lists are read again only for a caller that needs a newer
// change than they were read at.
func TestHostIndexServesOlderIndexes(t *testing.T) {
	e := newEnv(t)
	cs := &countingStore{Store: e.srv.store}
	e.srv.store = cs
	s := e.srv
	base, _ := s.changes.current()
	for _, step := range []struct {
		name  string
		index uint64
		reads int64
	}{
		{"first", base + 5, 1},
		{"the same index", base + 5, 1},
		{"an older index: a caller that queued while they were read", base + 3, 1},
		{"a newer index", base + 6, 2},
		{"older again", base, 2},
	} {
		if _, _, _, err := s.hosts.snapshotAt(bg, s, step.index); err != nil {
			t.Fatal(err)
		}
		if got := cs.lists.Load(); got != step.reads {
			t.Errorf("%s (index base+%d): %d reads of the instances in all, want %d", step.name, step.index-base, got, step.reads)
		}
	}
}
