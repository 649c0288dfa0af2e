package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/adminnode"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
	"github.com/gatehouse/gatehouse/internal/boltfile"
	"github.com/gatehouse/gatehouse/internal/pause"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// ingest is one run of the ingest benchmark.
type ingest struct {
	o      options
	d      *localdomain.Domain
	routes [][]route // by group
	nodes  []*node
	acks   measure.Latencies
	// Batches and series acknowledged, failed sends (each retried, as a
	// node manager's spool does), and the End of the last batch sent.
	batches, series, errs atomic.Int64
	lastEnd               atomic.Int64 // unix ns
	firstErr              sync.Once
	firstErrText          string
}

// node is one simulated node manager.
type node struct {
	host, token string
	c           *client.Client
	instances   []placed
	rng         *rand.Rand
	seq         uint64
}

// placed is an instance on a node.
type placed struct {
	group    int
	instance string
}

func runIngest(ctx context.Context, o options) (err error) {
	if err := measure.RaiseFileLimit(o.nodes + 512); err != nil {
		return err
	}
	d, err := localdomain.New(o.bin, "trafficscale", logf)
	if err != nil {
		return err
	}
	defer func() { d.Close(o.keep || err != nil) }()
	b := &ingest{o: o, d: d}
	for g := range o.groups {
		b.routes = append(b.routes, routesOf(g, o.routes))
	}
	if err := d.StartAdmin(ctx, "traffic"); err != nil {
		return err
	}
	began := time.Now()
	if err := b.declare(ctx); err != nil {
		return err
	}
	declared := time.Since(began)
	began = time.Now()
	logf("joining %d nodes", o.nodes)
	err = measure.Parallel(ctx, o.nodes, o.concurrency, func(i int) error {
		n := b.nodes[i]
		var err error
		if n.c, err = d.JoinSimulated(ctx, n.token, time.Minute); err != nil {
			return fmt.Errorf("join %s: %w", n.host, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	joined := time.Since(began)

	runCtx, stopNodes := context.WithCancel(ctx)
	var wg sync.WaitGroup
	logf("starting %d nodes, each at a random time within %s", o.nodes, o.interval)
	for _, n := range b.nodes {
		wg.Go(func() { n.run(runCtx, b) })
	}
	if !pause.For(ctx, o.interval+o.warmup) {
		stopNodes()
		wg.Wait()
		return ctx.Err()
	}
	logf("measuring for %s", o.window)
	m, err := b.measure(ctx)
	stopNodes()
	wg.Wait()
	if err != nil {
		return err
	}
	// The store is the admin node's while it runs.
	d.Admin().Stop()
	st, err := readStore(ctx, filepath.Join(d.AdminDir, adminnode.StoreFile), time.Unix(0, b.lastEnd.Load()))
	if err != nil {
		return err
	}
	b.report(m, st, declared, joined)
	return nil
}

// declare makes the groups, a host (a join token) for each node, and the
// groups' instances, instance k of the domain on host k mod nodes.
func (b *ingest) declare(ctx context.Context) error {
	o := b.o
	logf("declaring %d groups, %d hosts with join tokens, %d instances", o.groups, o.nodes, o.groups*o.instances)
	for g := range o.groups {
		if _, err := b.d.API.CreateGroup(ctx, apitypes.Group{Name: groupName(g)}); err != nil {
			return fmt.Errorf("create group %s: %w", groupName(g), err)
		}
	}
	b.nodes = make([]*node, o.nodes)
	for i := range b.nodes {
		b.nodes[i] = &node{host: hostName(i), rng: rand.New(rand.NewPCG(uint64(i), 0x6e6f6465))}
	}
	err := measure.Parallel(ctx, o.nodes, o.concurrency, func(i int) error {
		jt, err := b.d.API.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: b.nodes[i].host, TTL: "2h"})
		if err != nil {
			return fmt.Errorf("join token for %s: %w", b.nodes[i].host, err)
		}
		b.nodes[i].token = jt.Token
		return nil
	})
	if err != nil {
		return err
	}
	total := o.groups * o.instances
	for k := range total {
		n := b.nodes[k%o.nodes]
		n.instances = append(n.instances, placed{group: k / o.instances, instance: instanceName(k/o.instances, k%o.instances)})
	}
	return measure.Parallel(ctx, total, o.concurrency, func(k int) error {
		g, name := k/o.instances, instanceName(k/o.instances, k%o.instances)
		// Ports only need to differ on a host: these do across the domain.
		_, err := b.d.API.CreateInstance(ctx, apitypes.Instance{Name: name, Group: groupName(g), Host: hostName(k % o.nodes),
			Listen: fmt.Sprintf("127.0.0.1:%d", 10000+k%25000), StatusListen: fmt.Sprintf("127.0.0.1:%d", 35000+k%25000)})
		if err != nil {
			return fmt.Errorf("instance %s: %w", name, err)
		}
		return nil
	})
}

// run sends a batch every interval from a random phase, as a node
// manager collects its gateways every --traffic-interval: the increments
// of the interval, numbered in order, each retried until acknowledged.
func (n *node) run(ctx context.Context, b *ingest) {
	if !pause.For(ctx, rand.N(b.o.interval)) {
		return
	}
	prev := time.Now()
	t := time.NewTicker(b.o.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		end := time.Now()
		batch := traffic.Batch{Node: n.host, Seq: n.seq + 1, Start: prev, End: end}
		for _, in := range n.instances {
			batch.Series = instanceSeries(batch.Series, n.rng, groupName(in.group), in.instance, b.routes[in.group], end.Sub(prev))
		}
		if !n.send(ctx, b, batch) {
			return
		}
		n.seq, prev = batch.Seq, end
		for {
			last := b.lastEnd.Load()
			if end.UnixNano() <= last || b.lastEnd.CompareAndSwap(last, end.UnixNano()) {
				break
			}
		}
	}
}

// send sends batch until the admin node acknowledges it, backing off
// from 100 ms as the node manager's sender does; false when ctx ended.
func (n *node) send(ctx context.Context, b *ingest, batch traffic.Batch) bool {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		ack, err := n.c.SendTraffic(ctx, batch)
		if ctx.Err() != nil {
			return false
		}
		if err == nil && ack.Seq == batch.Seq {
			b.acks.Add(start, time.Since(start))
			b.batches.Add(1)
			b.series.Add(int64(len(batch.Series)))
			return true
		}
		if err == nil {
			err = fmt.Errorf("batch %d acknowledged as %d", batch.Seq, ack.Seq)
		}
		b.errs.Add(1)
		b.firstErr.Do(func() { b.firstErrText = fmt.Sprintf("%s: %v", n.host, err) })
		if !pause.For(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, b.o.interval)
	}
}

// ingestMeasurement is the window's.
type ingestMeasurement struct {
	measure.Usage
	anonMax               float64 // MiB
	batches, series, errs int64
	acks                  []time.Duration
	use0, use1            boltfile.Usage
	file0, file1          int64
	loadBefore, loadAfter string
}

func (b *ingest) measure(ctx context.Context) (ingestMeasurement, error) {
	pid := b.d.Admin().Pid()
	path := filepath.Join(b.d.AdminDir, adminnode.StoreFile)
	m := ingestMeasurement{loadBefore: measure.LoadAvg()}
	var err error
	if m.use0, err = boltfile.ReadUsage(path); err != nil {
		return m, err
	}
	m.file0 = fileSize(path)
	batches0, series0, errs0 := b.batches.Load(), b.series.Load(), b.errs.Load()
	m.Usage, err = measure.Watch(ctx, pid, "admin node", b.d.Admin().Done(), b.o.window, func() {
		if v, err := measure.ProcStatus(pid, "RssAnon"); err == nil {
			m.anonMax = max(m.anonMax, v)
		}
	})
	if err != nil {
		return m, err
	}
	if m.use1, err = boltfile.ReadUsage(path); err != nil {
		return m, err
	}
	m.file1 = fileSize(path)
	m.batches, m.series, m.errs = b.batches.Load()-batches0, b.series.Load()-series0, b.errs.Load()-errs0
	m.acks = b.acks.Between(m.Start, m.End)
	m.loadAfter = measure.LoadAvg()
	return m, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

const day = 24 * time.Hour

func (b *ingest) report(m ingestMeasurement, st storeStats, declared, joined time.Duration) {
	o := b.o
	instances := o.groups * o.instances
	perInstance := 2 * o.routes
	series := instances * perInstance
	secs := m.Window.Seconds()
	perDay := float64(day) / float64(m.Window)
	fmt.Println()
	fmt.Printf("Traffic ingest: %d simulated node managers, each POST /agent/v1/traffic every %s over its own mTLS connection\n", o.nodes, o.interval)
	fmt.Printf("  domain: %d groups × %d routes × %d instances = %d instances on %d hosts; %d series each (route × 2xx, 4xx): %d series per interval\n",
		o.groups, o.routes, o.instances, instances, o.nodes, perInstance, series)
	fmt.Printf("  admin node: %s (pid %d)\n", strings.Join(b.d.Admin().Cmd.Args, " "), b.d.Admin().Pid())
	fmt.Printf("  setup: groups, hosts, instances %.1f s; %d joins %.1f s; nodes started within %s, then %s warm-up\n",
		declared.Seconds(), o.nodes, joined.Seconds(), o.interval, o.warmup)
	fmt.Printf("  load average %s before the window, %s after (%d CPUs)\n", m.loadBefore, m.loadAfter, runtime.NumCPU())
	fmt.Println()
	fmt.Printf("  over %.0f s:\n", secs)
	fmt.Printf("    absorbed           %7.1f batches/s, %.0f series/s (%d batches, %d series acknowledged; %d failed sends, retried)\n",
		float64(m.batches)/secs, float64(m.series)/secs, m.batches, m.series, m.errs)
	if b.firstErrText != "" {
		fmt.Printf("      first failure: %s\n", b.firstErrText)
	}
	fmt.Printf("    ack latency        p50 %.2f ms, p99 %.2f ms, max %.2f ms (POST to answer, as the node sees it)\n",
		measure.MS(measure.Percentile(m.acks, 50)), measure.MS(measure.Percentile(m.acks, 99)), measure.MS(measure.Percentile(m.acks, 100)))
	perBatch := 0.0
	if m.batches > 0 {
		perBatch = m.CPU * secs * 1000 / float64(m.batches)
	}
	fmt.Printf("    admin CPU          %7.1f %% of one core (%.2f ms per batch)\n", 100*m.CPU, perBatch)
	fmt.Printf("    admin RSS          %7.1f MiB mean, %.1f MiB max (of which anonymous %.1f MiB max; the rest is the store's mapped pages); VmHWM %.1f MiB\n",
		m.RSSMean, m.RSSMax, m.anonMax, m.HWM)
	grow := m.use1.Size - m.use0.Size
	used := (m.use1.Size - m.use1.Free) - (m.use0.Size - m.use0.Free)
	fmt.Printf("    store pages        %+.1f MiB allocated (high-water %.1f → %.1f MiB: %.2f GiB/day at this rate); %+.1f MiB in use, free pages %.1f → %.1f MiB\n",
		mib(grow), mib(m.use0.Size), mib(m.use1.Size), gib(float64(grow)*perDay), mib(used), mib(m.use0.Free), mib(m.use1.Free))
	fmt.Printf("    store file         %.1f → %.1f MiB (bbolt grows it ahead of its pages, in steps of up to 16 MiB)\n", mib(m.file0), mib(m.file1))
	fmt.Printf("    simulator          %7.1f %% of one core (shares the machine with the admin node)\n", 100*m.SelfCPU)
	fmt.Println()
	st.report(instances, perInstance)
}
