// Command backupbench measures the online backup of a large domain
// (docs/backups.md) through the real binary: an admin node (gatehouse
// admin init + admin run) whose domain has -groups groups of -routes
// routes each, deployed, and -days days of traffic metrics, backed up with
// gatehouse admin backup --to file://… while API readers keep asking. It
// reports each backup's time and size and the p99 of the reads before and
// during the backups. See bench/README.md ("Online backup").
package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode"
	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/adminnode/store/pgstore"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/boltfile"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

type options struct {
	bin         string
	store       string
	groups      int
	routes      int
	days        int
	every       time.Duration
	seriesRoute int
	readers     int
	rate        float64
	window      time.Duration
	backups     int
	keep        bool
}

const host = "bench-host"

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gatehouse", "the gatehouse binary")
	flag.StringVar(&o.store, "store", "bbolt", "the domain's store: bbolt, or postgres (a PostgreSQL server of the benchmark's own, durable defaults, on a Unix socket)")
	flag.IntVar(&o.groups, "groups", 50, "groups of the domain, each with a deployment and an instance")
	flag.IntVar(&o.routes, "routes", 2000, "routes of each group (20 services)")
	flag.IntVar(&o.days, "days", 30, "days of traffic metrics in the store, up to now")
	flag.DurationVar(&o.every, "metrics-every", 5*time.Minute, "one traffic batch per this much of those days (each a point of every series)")
	flag.IntVar(&o.seriesRoute, "metrics-routes", 5, "routes of each group with traffic (2 series each: 2xx and 4xx)")
	flag.IntVar(&o.readers, "readers", 4, "API readers at once")
	flag.Float64Var(&o.rate, "rate", 200, "reads a second of all the readers together, paced: a fixed load, not as many as the admin node can answer")
	flag.DurationVar(&o.window, "window", 20*time.Second, "length of the readers' window without a backup")
	flag.IntVar(&o.backups, "backups", 20, "backups taken while the readers run, each followed by as long (at least a second) without one")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Parse()
	if o.store != "bbolt" && o.store != "postgres" {
		fmt.Fprintf(os.Stderr, "backupbench: -store %q: bbolt or postgres\n", o.store)
		os.Exit(2)
	}
	if o.groups < 1 || o.routes < 20 || o.days < 1 || o.every < 10*time.Second || o.readers < 1 || o.backups < 1 || o.seriesRoute < 1 || o.rate <= 0 {
		fmt.Fprintln(os.Stderr, "backupbench: -groups, -readers, -rate, -backups, -days and -metrics-routes must be positive, -routes at least 20, -metrics-every at least 10s")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "backupbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s backupbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func groupName(g int) string { return fmt.Sprintf("g%02d", g) }

// config is a group's configuration: 20 services of routes/20 routes, one
// upstream.
func config(g, routes int) deploy.Config {
	c := deploy.Config{Upstreams: []deploy.Upstream{{Name: "up", Targets: []deploy.Target{{Address: "127.0.0.1:9001"}}}}}
	per := routes / 20
	for s := range 20 {
		svc := deploy.Service{Name: fmt.Sprintf("svc%02d", s), Upstream: "up"}
		for r := range per {
			svc.Routes = append(svc.Routes, deploy.Route{Name: fmt.Sprintf("s%02d-r%04d", s, r),
				Paths: []string{fmt.Sprintf("/%s/svc%02d/items%04d/*", groupName(g), s, r)}})
		}
		c.Services = append(c.Services, svc)
	}
	return c
}

func run(ctx context.Context, o options) (err error) {
	d, err := localdomain.New(o.bin, "backup", logf)
	if err != nil {
		return err
	}
	defer func() { d.Close(o.keep || err != nil) }()
	var open func() (store.Store, error)
	var size func() (int64, error)
	switch o.store {
	case "postgres":
		srv, err := pgtest.StartDurable()
		if err != nil {
			return err
		}
		defer srv.Stop()
		dsn := srv.DSN("postgres")
		dsnFile := filepath.Join(d.Work, "dsn")
		if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
			return err
		}
		d.StoreFile = dsnFile
		open = func() (store.Store, error) { return pgstore.Open(ctx, dsn) }
		size = func() (int64, error) {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return 0, err
			}
			defer conn.Close(ctx)
			var n int64
			return n, conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
		}
	default:
		path := filepath.Join(d.AdminDir, adminnode.StoreFile)
		open = func() (store.Store, error) { return store.Open(path) }
		size = func() (int64, error) {
			u, err := boltfile.ReadUsage(path)
			return u.Size, err
		}
	}
	if err := d.StartAdmin(ctx, "bench"); err != nil {
		return err
	}
	if _, err := d.API.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: host, TTL: "1h"}); err != nil {
		return err
	}
	logf("%d groups of %d routes: draft, deployment and an instance each", o.groups, o.routes)
	began := time.Now()
	err = measure.Parallel(ctx, o.groups, 4, func(g int) error {
		name := groupName(g)
		if _, err := d.API.CreateGroup(ctx, apitypes.Group{Name: name}); err != nil {
			return err
		}
		body, err := json.Marshal(config(g, o.routes))
		if err != nil {
			return err
		}
		if _, err := d.API.PutDraft(ctx, name, body, "application/json", 0); err != nil {
			return fmt.Errorf("draft of %s: %w", name, err)
		}
		if _, err := d.API.Deploy(ctx, name, apitypes.DeployRequest{Message: "bench"}); err != nil {
			return fmt.Errorf("deploy %s: %w", name, err)
		}
		_, err = d.API.CreateInstance(ctx, apitypes.Instance{Name: name + "-i0", Group: name, Host: host,
			Listen: fmt.Sprintf("127.0.0.1:%d", 10000+g), StatusListen: fmt.Sprintf("127.0.0.1:%d", 35000+g)})
		return err
	})
	if err != nil {
		return err
	}
	logf("made in %.1f s", time.Since(began).Seconds())
	var fill filled
	err = d.RestartAdmin(ctx, func() error {
		var ferr error
		fill, ferr = prefill(ctx, open, o)
		return ferr
	})
	if err != nil {
		return err
	}
	pid := d.Admin().Pid()

	tok, err := d.API.CreateToken(ctx, apitypes.TokenCreate{Name: "backup"})
	if err != nil {
		return err
	}
	bdir := filepath.Join(d.Work, "backups")
	backupOnce := func() (backupResult, error) {
		cmd := exec.CommandContext(ctx, d.Bin, "admin", "backup", "--to", "file://"+bdir, "-o", "json")
		cmd.Env = append(os.Environ(), "GATEHOUSE_ADDR="+d.AdminURL, "GATEHOUSE_TOKEN="+tok.Secret, "GATEHOUSE_CACERT="+d.CAFile,
			"HOME="+d.Work, "GATEHOUSE_CONFIG="+filepath.Join(d.Work, "cli.json"))
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		start := time.Now()
		cpu0 := measure.ProcCPU(pid)
		if err := cmd.Run(); err != nil {
			return backupResult{}, fmt.Errorf("gatehouse admin backup: %w\n%s", err, errOut.String())
		}
		r := backupResult{start: start, took: time.Since(start), adminCPU: measure.ProcCPU(pid) - cpu0,
			cliCPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
		return r, json.Unmarshal([]byte(out.String()), &r)
	}
	// One backup first, unmeasured: the pages it reads come into the
	// page cache, as they are in a domain that has been running.
	if _, err := backupOnce(); err != nil {
		return err
	}

	var lat measure.Latencies
	var reads atomic.Int64
	rctx, stopReaders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	readErr := make(chan error, o.readers)
	for r := range o.readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			// Each reader asks at its share of the rate, the readers
			// spread over one period: a read that comes late is timed
			// from when it was due, so that waiting behind a slow one
			// counts too.
			period := time.Duration(float64(o.readers) / o.rate * float64(time.Second))
			due := time.Now().Add(time.Duration(r) * period / time.Duration(o.readers))
			for rctx.Err() == nil {
				if wait := time.Until(due); wait > 0 {
					select {
					case <-rctx.Done():
						return
					case <-time.After(wait):
					}
				}
				start := due
				due = due.Add(period)
				if err := read(rctx, d.API, rng, o.groups); err != nil {
					if rctx.Err() == nil {
						readErr <- err
					}
					return
				}
				lat.Add(start, time.Since(start))
				reads.Add(1)
			}
		})
	}
	defer func() {
		stopReaders()
		wg.Wait()
	}()
	logf("readers alone for %s", o.window)
	t0 := time.Now()
	cpu0 := measure.ProcCPU(pid)
	if err := pause(ctx, readErr, o.window); err != nil {
		return err
	}
	t1 := time.Now()
	baseCPU := measure.ProcCPU(pid) - cpu0
	logf("%d backups, each followed by as long without one, readers going on", o.backups)
	var results []backupResult
	for range o.backups {
		r, err := backupOnce()
		if err != nil {
			return err
		}
		results = append(results, r)
		// As long again without a backup: the reads of these gaps meet
		// the same load of the machine as those of the backups around
		// them, which the long windows before and after may not.
		if err := pause(ctx, readErr, max(r.took, time.Second)); err != nil {
			return err
		}
		r.gapEnd = time.Now()
		results[len(results)-1] = r
	}
	t2 := time.Now()
	logf("readers alone again for %s", o.window)
	cpu1 := measure.ProcCPU(pid)
	if err := pause(ctx, readErr, o.window); err != nil {
		return err
	}
	t3 := time.Now()
	afterCPU := measure.ProcCPU(pid) - cpu1
	stopReaders()
	wg.Wait()

	plain, err := uncompressed(filepath.Join(bdir, results[len(results)-1].Name))
	if err != nil {
		return err
	}
	before, after := lat.Between(t0, t1), lat.Between(t2, t3)
	var during, gaps []time.Duration
	for _, r := range results {
		end := r.start.Add(r.took)
		during = append(during, lat.Between(r.start, end)...)
		gaps = append(gaps, lat.Between(end, r.gapEnd)...)
	}
	base := append(append([]time.Duration{}, before...), after...)
	stored, err := size()
	if err != nil {
		return err
	}

	fmt.Println()
	fmt.Printf("Online backup: %d groups × %d routes (deployed), %d days of traffic metrics; gatehouse admin backup --to file://… against a running admin node (%s)\n",
		o.groups, o.routes, o.days, o.store)
	fmt.Printf("  store: %.1f MiB (%s); metrics: %d batches of %d series (a point per series every %s over %d days) written in %.0f s, rolled up in %.0f s\n",
		mib(stored), storeSizeWhat[o.store], fill.batches, fill.series, o.every, o.days, fill.took.Seconds(), fill.rollup.Seconds())
	fmt.Printf("  readers: %d, %.0f reads/s in all (GET /groups/G, /groups/G/summary, /instances?group=G at random), timed from when each was due\n", o.readers, o.rate)
	fmt.Printf("  load average %s at the end (%d CPUs)\n\n", measure.LoadAvg(), runtime.NumCPU())
	for i, r := range results {
		fmt.Printf("  backup %d: %.2f s, %.1f MiB (%d records: %d deployments, %d drafts, %d audit), CPU: admin node %.2f s, the command %.2f s\n",
			i+1, r.took.Seconds(), mib(r.Size), r.Records, r.Counts["deployment"], r.Counts["draft"], r.Counts["audit"], r.adminCPU.Seconds(), r.cliCPU.Seconds())
	}
	fmt.Printf("  the last one is %.1f MiB uncompressed (gzip: %.0f×)\n", mib(plain), float64(plain)/float64(results[len(results)-1].Size))
	row := func(what string, ds []time.Duration, wall, cpu time.Duration) {
		fmt.Printf("  %-26s %6d reads, p50 %6.2f ms, p99 %6.2f ms, max %7.2f ms; %.0f reads/s", what, len(ds),
			measure.MS(measure.Percentile(ds, 50)), measure.MS(measure.Percentile(ds, 99)), measure.MS(measure.Percentile(ds, 100)),
			float64(len(ds))/wall.Seconds())
		if cpu > 0 {
			fmt.Printf("; admin CPU %.0f %%", 100*cpu.Seconds()/wall.Seconds())
		}
		fmt.Println()
	}
	fmt.Println()
	row("reads, no backup (before)", before, t1.Sub(t0), baseCPU)
	row("reads during the backups", during, sumTook(results), 0)
	row("reads between the backups", gaps, t2.Sub(t1)-sumTook(results), 0)
	row("reads, no backup (after)", after, t3.Sub(t2), afterCPU)
	p99base, p99gaps, p99during := measure.Percentile(base, 99), measure.Percentile(gaps, 99), measure.Percentile(during, 99)
	verdict := "met"
	if float64(p99during) > 1.5*float64(p99gaps) {
		verdict = "NOT met"
	}
	fmt.Printf("\n  p99 during the backups / between them: %.2f / %.2f ms = %.2f× (target ≤ 1.5×: %s)\n",
		measure.MS(p99during), measure.MS(p99gaps), float64(p99during)/float64(p99gaps), verdict)
	fmt.Printf("  p99 during the backups / the windows before and after: %.2f / %.2f ms = %.2f×\n",
		measure.MS(p99during), measure.MS(p99base), float64(p99during)/float64(p99base))
	return nil
}

// backupResult is what gatehouse admin backup -o json printed, and what it
// cost.
type backupResult struct {
	Name     string         `json:"name"`
	Size     int64          `json:"size"`
	Records  int            `json:"records"`
	Counts   map[string]int `json:"counts"`
	start    time.Time
	took     time.Duration
	gapEnd   time.Time
	adminCPU time.Duration
	cliCPU   time.Duration
}

func sumTook(rs []backupResult) time.Duration {
	var d time.Duration
	for _, r := range rs {
		d += r.took
	}
	return d
}

// read is one API read of the mix: a group, its summary, or the
// instances of the domain.
func read(ctx context.Context, c *client.Client, rng *rand.Rand, groups int) error {
	g := groupName(rng.IntN(groups))
	var err error
	switch rng.IntN(3) {
	case 0:
		_, err = c.GetGroup(ctx, g)
	case 1:
		_, err = c.GroupSummary(ctx, g)
	default:
		_, err = c.ListInstances(ctx, client.InstanceFilter{Group: g})
	}
	return err
}

func pause(ctx context.Context, errs <-chan error, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-errs:
		return err
	case <-time.After(d):
		return nil
	}
}

var storeSizeWhat = map[string]string{"bbolt": "pages of admin.db", "postgres": "pg_database_size"}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// uncompressed is the size of a backup's content.
func uncompressed(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, zr)
}

// filled is what prefill wrote.
type filled struct {
	took, rollup time.Duration
	batches      int
	series       int
}

// prefill writes -days of traffic of every group's instance, up to now,
// into the store at path (the admin node stopped): a batch of the host
// every -metrics-every, then MaintainTraffic rolls them up into 1 min
// points as the admin node would have.
func prefill(ctx context.Context, open func() (store.Store, error), o options) (filled, error) {
	var f filled
	s, err := open()
	if err != nil {
		return f, err
	}
	defer s.Close()
	lim := store.TrafficLimits{MaxRoutes: api.DefaultTrafficMaxRoutes, MaxConsumers: api.DefaultTrafficMaxConsumers}
	end := time.Now().Truncate(o.every)
	// The oldest minute stays inside the 1 min points' retention.
	n := int((time.Duration(o.days)*24*time.Hour - time.Hour) / o.every)
	logf("filling the store with %d batches: %d days of %d groups", n, o.days, o.groups)
	began := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	var series []traffic.DomainSeries
	for i := range n {
		at := end.Add(-time.Duration(n-1-i) * o.every)
		series = series[:0]
		for g := range o.groups {
			for r := range o.seriesRoute {
				for _, class := range []string{traffic.Class2xx, traffic.Class4xx} {
					x := traffic.DomainSeries{Group: groupName(g), Instance: groupName(g) + "-i0",
						Series: traffic.Series{Key: traffic.Key{Service: "svc00", Route: fmt.Sprintf("s00-r%04d", r), Class: class}}}
					x.Counts.Requests = 1 + uint64(rng.IntN(1000))
					x.Counts.LatencySumMicros = x.Counts.Requests * 2000
					x.Counts.Latency[3] = x.Counts.Requests
					series = append(series, x)
				}
			}
		}
		b := traffic.Batch{Node: host, Seq: uint64(i + 1), Start: at.Add(-store.TrafficFine), End: at, Series: series}
		if _, err := s.IngestTraffic(ctx, b, lim, at); err != nil {
			return f, err
		}
		f.batches++
		f.series = len(series)
		if i%2000 == 1999 {
			logf("  %d of %d batches", i+1, n)
		}
	}
	f.took = time.Since(began)
	began = time.Now()
	if _, err := s.MaintainTraffic(ctx, end); err != nil {
		return f, err
	}
	f.rollup = time.Since(began)
	return f, nil
}
