package backup

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/backupfile"
)

// share is the part of a core a backup may keep busy: it is background
// work beside the requests the admin node serves (bench/README.md,
// "Online backup").
const share = 0.05

// Write streams a backup of s, signed by key as the domain's, to w. It
// returns what was written once it is all written; on an error, what w
// got is not a backup (it has no valid last line). It paces itself to
// about a twentieth of a core, pausing between records and between the
// pieces of a large one.
func Write(ctx context.Context, w io.Writer, s store.Store, domain string, key ed25519.PrivateKey, now time.Time) (backupfile.Summary, error) {
	bw, err := backupfile.NewWriter(w, domain, now, key)
	if err != nil {
		return backupfile.Summary{}, fmt.Errorf("back up domain %s: %w", domain, err)
	}
	pace := newPacer(share)
	bw.Yield(func() error { return pace.step(ctx) })
	err = s.Snapshot(ctx, func(it store.Item) error {
		if err := pace.step(ctx); err != nil {
			return err
		}
		if it.Kind == store.KindDomain {
			it, err := it.Decoded()
			if err != nil {
				return err
			}
			d, ok := it.Value.(store.Domain)
			if !ok || d.Name != domain {
				return fmt.Errorf("the store holds domain %v, not %s", it.Value, domain)
			}
		}
		value, err := encodeItem(it)
		if err != nil {
			return fmt.Errorf("encode %s: %w", it.Kind, err)
		}
		return bw.Record(it.Kind, value)
	})
	if err != nil {
		return backupfile.Summary{}, fmt.Errorf("back up domain %s: %w", domain, err)
	}
	res, err := bw.Close()
	if err != nil {
		return backupfile.Summary{}, fmt.Errorf("back up domain %s: %w", domain, err)
	}
	return res, nil
}

// encodeItem is the JSON of an item's value on one line: the store's own
// encoding when it gave it (compacted if it spans lines), else Value's.
func encodeItem(it store.Item) ([]byte, error) {
	if it.Raw == nil {
		return json.Marshal(it.Value)
	}
	if bytes.IndexAny(it.Raw, "\r\n") < 0 {
		return it.Raw, nil
	}
	var b bytes.Buffer
	err := json.Compact(&b, it.Raw)
	return b.Bytes(), err
}

// Restore reads the backup r into the empty store s, after checking it as
// backupfile.Read does: nothing is kept unless the whole backup verifies,
// since the store's Restore is one transaction the failure rolls back.
func Restore(ctx context.Context, r io.Reader, s store.Store, want backupfile.Expect) (backupfile.Summary, error) {
	var res backupfile.Summary
	err := s.Restore(ctx, func(put func(store.Item) error) error {
		var err error
		res, err = backupfile.Read(r, want, store.SnapshotKinds, func(kind string, value json.RawMessage) error {
			it, err := store.DecodeItem(kind, value)
			if err != nil {
				return fmt.Errorf("%w: %s record: %v", backupfile.ErrTampered, kind, err)
			}
			return put(it)
		})
		return err
	})
	if errors.Is(err, store.ErrExists) {
		return backupfile.Summary{}, fmt.Errorf("restore refused, nothing changed: %w", err)
	}
	if err != nil {
		return backupfile.Summary{}, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

// CountsText lists counts as "2 group, 5 deployment, …" in the order of
// store.SnapshotKinds.
func CountsText(counts map[string]int) string {
	return backupfile.CountsText(counts, store.SnapshotKinds)
}

// pacer keeps a loop to a share of a core: after each stretch of work it
// pauses in proportion, so that a long backup leaves the admin node's
// other work the rest.
type pacer struct {
	share float64
	since time.Time
}

// pacerStretch is the work between two pauses: long enough that the
// pauses cost nothing, short enough that requests do not wait behind it.
const pacerStretch = time.Millisecond

func newPacer(share float64) *pacer { return &pacer{share: share, since: time.Now()} }

func (p *pacer) step(ctx context.Context) error {
	busy := time.Since(p.since)
	if busy < pacerStretch {
		// A request that became runnable meanwhile goes first: the
		// scheduler would let it wait for the backup's whole stretch.
		runtime.Gosched()
		return nil
	}
	t := time.NewTimer(time.Duration(float64(busy) * (1 - p.share) / p.share))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	p.since = time.Now()
	return nil
}
