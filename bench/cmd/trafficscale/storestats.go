package main

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/internal/boltfile"
)

// storeStats is what the admin node's store holds after a run.
type storeStats struct {
	batches, series, duplicates, lost uint64
	rollupAt                          time.Time
	rolledUp                          int
	before, after                     boltfile.Usage
	fine, coarse, groups              bucketStats
}

// bucketStats sums the group buckets under one of the store's traffic
// buckets (docs/metrics.md, "Layout"; adminnode/store/traffic.go).
type bucketStats struct {
	keys         int
	alloc, inuse int64 // bytes of pages, and of them what keys and values fill
}

// readStore reads the store of a stopped admin node: what it stored per
// node, then, after rolling up the minutes of the run up to lastEnd as
// the admin node's next maintenance would (at the end of the minute of
// lastEnd plus its 30 s of grace), the pages of its traffic buckets.
func readStore(ctx context.Context, path string, lastEnd time.Time) (storeStats, error) {
	var st storeStats
	var err error
	if st.before, err = boltfile.ReadUsage(path); err != nil {
		return st, err
	}
	s, err := store.Open(path)
	if err != nil {
		return st, err
	}
	nodes, err := s.ListTrafficNodes(ctx)
	if err != nil {
		s.Close()
		return st, err
	}
	for _, n := range nodes {
		st.batches += n.Batches
		st.series += n.Series
		st.duplicates += n.Duplicates
		st.lost += n.Lost
	}
	st.rollupAt = lastEnd.Truncate(time.Minute).Add(time.Minute + 30*time.Second)
	m, err := s.MaintainTraffic(ctx, st.rollupAt)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return st, err
	}
	st.rolledUp = m.RolledUp
	if st.after, err = boltfile.ReadUsage(path); err != nil {
		return st, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return st, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for name, into := range map[string]*bucketStats{"traffic_10s": &st.fine, "traffic_1m": &st.coarse, "traffic_groups": &st.groups} {
			top := tx.Bucket([]byte(name))
			if top == nil {
				return fmt.Errorf("%s: no bucket %s: has the store's layout changed?", path, name)
			}
			err := top.ForEachBucket(func(k []byte) error {
				bs := top.Bucket(k).Stats()
				into.keys += bs.KeyN
				into.alloc += int64(bs.BranchAlloc + bs.LeafAlloc)
				into.inuse += int64(bs.BranchInuse + bs.LeafInuse)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return st, err
}

// report prints what the store holds and extrapolates it to a day of a
// domain of instances, each with perInstance series in every 10 s point.
func (st *storeStats) report(instances, perInstance int) {
	fmt.Println("  store after the run (admin node stopped; the minutes of the run rolled up as its next maintenance would, at " +
		st.rollupAt.Format("15:04:05") + "):")
	fmt.Printf("    stored             %d batches, %d series (per the store's counts per node; %d duplicates, %d lost)\n",
		st.batches, st.series, st.duplicates, st.lost)
	fmt.Printf("    file pages         high-water %.1f MiB, %.1f MiB of it free; after rolling up %d instance-minutes: %.1f MiB, %.1f MiB free\n",
		mib(st.before.Size), mib(st.before.Free), st.rolledUp, mib(st.after.Size), mib(st.after.Free))
	row := func(what string, b bucketStats) (perKey float64) {
		if b.keys == 0 {
			fmt.Printf("    %-18s none\n", what)
			return 0
		}
		perKey = float64(b.alloc) / float64(b.keys)
		fmt.Printf("    %-18s %d keys (an instance at a time), %.1f MiB of pages, %.1f MiB filled: %.0f bytes of pages per key, %.1f per series-point (%.1f filled)\n",
			what, b.keys, mib(b.alloc), mib(b.inuse), perKey, perKey/float64(perInstance), float64(b.inuse)/float64(b.keys)/float64(perInstance))
		return perKey
	}
	fine := row("10 s points", st.fine)
	coarse := row("1 min points", st.coarse)
	fmt.Printf("    %-18s %d of those keys by the admin node's own maintenance during the run, %d here\n", "rolled up", st.coarse.keys-st.rolledUp, st.rolledUp)
	fmt.Printf("    %-18s %.1f MiB of pages (series dictionaries, labels, running totals)\n", "per-group state", mib(st.groups.alloc))

	fineDay := fine * float64(instances) * float64(day/store.TrafficFine)
	coarseDay := coarse * float64(instances) * float64(day/store.TrafficCoarse)
	retained := float64(store.TrafficCoarseRetention / day)
	series := instances * perInstance
	fmt.Println()
	fmt.Printf("  extrapolated, this domain (%d series, every one in every 10 s point), pages of the store:\n", series)
	fmt.Printf("    10 s points        %.2f GiB per day; kept %s, so that is also what they hold at most\n", gib(fineDay), store.TrafficFineRetention)
	fmt.Printf("    1 min points       %.2f GiB per day; kept %.0f days: %.1f GiB\n", gib(coarseDay), retained, gib(coarseDay*retained))
	fmt.Printf("    growth             %.2f GiB the first day, then %.2f GiB a day up to %.1f GiB at 30 days; the file adds bbolt's free pages (%.0f %% of it at the end of this run)\n",
		gib(fineDay+coarseDay), gib(coarseDay), gib(fineDay+coarseDay*retained), 100*float64(st.after.Free)/float64(max(st.after.Size, 1)))
	k := 1000 / float64(series)
	fmt.Printf("    per 1,000 series   %.0f MiB of 10 s points a day, %.1f MiB of 1 min points a day\n", fineDay*k/(1<<20), coarseDay*k/(1<<20))
}
