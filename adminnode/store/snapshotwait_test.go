package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// While a backup's snapshot is open, the store keeps taking writes that
// grow its file well past its first size, and answers reads: nothing
// waits for the snapshot's end (bbolt would, to map a larger file).
func TestSnapshotOpenWritesAndReadsGoOn(t *testing.T) {
	s, _ := open(t)
	if err := s.InitDomain(ctx, Domain{Name: "prod", CreatedAt: t0, SigningPublicKey: []byte{1, 2}}); err != nil {
		t.Fatal(err)
	}

	opened, release := make(chan struct{}), make(chan struct{})
	var snapErr error
	var snap sync.WaitGroup
	snap.Go(func() {
		first := true
		snapErr = s.Snapshot(ctx, func(Item) error {
			if first {
				first = false
				close(opened)
				<-release
			}
			return nil
		})
	})
	var released sync.Once
	unblock := func() { released.Do(func() { close(release) }) }
	t.Cleanup(func() { unblock(); snap.Wait() })
	<-opened

	// 16 groups with a draft of 2,000 routes each: megabytes.
	var wrote atomic.Int32
	var writeErr atomic.Pointer[error]
	go func() {
		for g := range 16 {
			name := fmt.Sprintf("g%02d", g)
			if _, err := s.CreateGroup(ctx, Group{Name: name}); err != nil {
				writeErr.Store(&err)
				return
			}
			if _, err := s.PutDraft(ctx, name, bigConfig(name, 2000), 0, "test"); err != nil {
				writeErr.Store(&err)
				return
			}
			wrote.Add(1)
		}
	}()
	waitfor.Cond(t, 20*time.Second, "16 drafts written while the snapshot is open", func() (bool, string) {
		if p := writeErr.Load(); p != nil {
			t.Fatalf("write while the snapshot is open: %v", *p)
		}
		return wrote.Load() == 16, fmt.Sprintf("%d written", wrote.Load())
	})
	read := make(chan error, 1)
	go func() {
		_, err := s.GetDraft(ctx, "g15")
		read <- err
	}()
	waitfor.Cond(t, 20*time.Second, "a read answered while the snapshot is open", func() (bool, string) {
		select {
		case err := <-read:
			if err != nil {
				t.Fatalf("read while the snapshot is open: %v", err)
			}
			return true, ""
		default:
			return false, "no answer"
		}
	})
	one, err := json.Marshal(bigConfig("g00", 2000))
	if err != nil {
		t.Fatal(err)
	}
	// A new file is mapped 32 KiB at first, doubled as it grows: a
	// megabyte needs it mapped larger some times over.
	if written := 16 * len(one); written < 1<<20 {
		t.Fatalf("wrote %d bytes: too little to need a larger mapping", written)
	}
	unblock()
	snap.Wait()
	if snapErr != nil && !errors.Is(snapErr, ctx.Err()) {
		t.Fatalf("snapshot: %v", snapErr)
	}
}

func bigConfig(group string, routes int) deploy.Config {
	c := cfg("up")
	svc := deploy.Service{Name: "svc", Upstream: "up"}
	for r := range routes {
		svc.Routes = append(svc.Routes, deploy.Route{Name: fmt.Sprintf("r%04d", r), Paths: []string{fmt.Sprintf("/%s/items%04d/*", group, r)}})
	}
	c.Services = []deploy.Service{svc}
	return c
}
