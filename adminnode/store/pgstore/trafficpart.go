package pgstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// pointTable is a table of traffic points partitioned by range of time
// (migration 0004): a partition spans period seconds from a multiple of
// period, and goes whole once entirely past retention.
type pointTable struct {
	name      string
	period    int64
	retention time.Duration
}

var (
	fineTable   = pointTable{"traffic_fine", 24 * 3600, store.TrafficFineRetention}
	coarseTable = pointTable{"traffic_coarse", 7 * 24 * 3600, store.TrafficCoarseRetention}
)

// partition is one partition of a pointTable: [lo, hi) in Unix seconds.
type partition struct {
	table  string
	name   string
	lo, hi int64
}

// partition returns the partition holding Unix second at.
func (t pointTable) partition(at int64) partition {
	lo := store.FloorTraffic(at, time.Duration(t.period)*time.Second)
	return partition{table: t.name, name: t.name + "_p" + time.Unix(lo, 0).UTC().Format("20060102"), lo: lo, hi: lo + t.period}
}

// partitionOf reads a partition's range back from its name; false for a
// table not named as the store names partitions.
func (t pointTable) partitionOf(name string) (partition, bool) {
	day, ok := strings.CutPrefix(name, t.name+"_p")
	if !ok {
		return partition{}, false
	}
	d, err := time.Parse("20060102", day)
	if err != nil {
		return partition{}, false
	}
	p := t.partition(d.Unix())
	return p, p.name == name
}

// partitionLock is the advisory lock key under which partitions are
// created and dropped: two admin nodes creating one partition at once
// would collide in the catalog.
const partitionLock = 0x6774726166 // "gtraf"

// knownPartitions remembers the partitions this store has seen to exist,
// so that ingest asks for a partition once, not on every batch. A
// partition dropped by another admin node may linger here: an insert
// into it fails and IngestTraffic forgets it and tries again.
type knownPartitions struct {
	mu    sync.Mutex
	names map[string]bool
}

func (k *knownPartitions) missing(parts []partition) []partition {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []partition
	for _, p := range parts {
		if !k.names[p.name] {
			out = append(out, p)
		}
	}
	return out
}

func (k *knownPartitions) set(name string, known bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.names == nil {
		k.names = map[string]bool{}
	}
	if known {
		k.names[name] = true
	} else {
		delete(k.names, name)
	}
}

func (k *knownPartitions) forget() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.names)
}

// ensurePartitions creates the partitions that are missing. One close to
// its drop (within an hour of retention at now) is not remembered: some
// admin node's maintenance may drop it soon.
func (p *PG) ensurePartitions(ctx context.Context, now time.Time, parts ...partition) error {
	missing := p.parts.missing(parts)
	if len(missing) == 0 {
		return nil
	}
	err := p.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return err
		}
		for _, m := range missing {
			if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM (%d) TO (%d)",
				pgx.Identifier{m.name}.Sanitize(), pgx.Identifier{m.table}.Sanitize(), m.lo, m.hi)); err != nil {
				return fmt.Errorf("create partition %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range missing {
		t := fineTable
		if m.table == coarseTable.name {
			t = coarseTable
		}
		if m.hi > now.Add(time.Hour-t.retention).Unix() {
			p.parts.set(m.name, true)
		}
	}
	return nil
}

// dropPartitions drops the partitions of t entirely past retention at
// now, and returns their names.
func (p *PG) dropPartitions(ctx context.Context, t pointTable, now time.Time) ([]string, error) {
	cutoff := now.Add(-t.retention).Unix()
	var dropped []string
	err := p.tx(ctx, func(tx pgx.Tx) error {
		dropped = dropped[:0]
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = $1::regclass ORDER BY c.relname`, t.name)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, name := range names {
			part, ok := t.partitionOf(name)
			if !ok || part.hi > cutoff {
				continue
			}
			if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{name}.Sanitize()); err != nil {
				return fmt.Errorf("drop partition %s: %w", name, err)
			}
			dropped = append(dropped, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("drop partitions of %s: %w", t.name, err)
	}
	for _, name := range dropped {
		p.parts.set(name, false)
	}
	return dropped, nil
}
