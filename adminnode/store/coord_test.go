package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// A bbolt store has one admin node: not shared, the lease always held by
// it, and a watch that only ends.
func TestBoltCoordinator(t *testing.T) {
	b, _ := open(t)
	if b.Shared() {
		t.Error("a bbolt store says it is shared")
	}
	wctx, cancel := context.WithCancel(ctx)
	ch := b.Watch(wctx, "one")
	if h, _ := b.LeaseHolder(ctx); h != "" {
		t.Errorf("lease holder %q before any lease", h)
	}
	if l := b.Lease(ctx, "one"); !l.Held() {
		t.Error("the lease of the only admin node is not held")
	}
	if h, _ := b.LeaseHolder(ctx); h != "one" {
		t.Errorf("lease holder %q, want one", h)
	}
	if n, _ := b.AdminNodes(ctx); !slices.Equal(n, []string{"one"}) {
		t.Errorf("admin nodes %q, want [one]", n)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("a bbolt watch delivered a change")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end with its context")
	}
}
