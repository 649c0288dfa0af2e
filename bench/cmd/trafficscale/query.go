package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/adminnode"
	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
	"github.com/gatehouse/gatehouse/internal/boltfile"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The queried group, and the host its instances run on: one node manager
// for the group, so that its 24 hours are one batch per 10 s.
const (
	queryGroup = 0
	queryHost  = "query-host"
)

// filled is what prefill wrote.
type filled struct {
	took, rollup time.Duration
	batches      int
	series       int
	pages        int64 // the store's high-water mark, in bytes
	// requests by minute (Unix seconds), to check the answers.
	requests map[int64]uint64
}

func runQuery(ctx context.Context, o options) (err error) {
	d, err := localdomain.New(o.bin, "trafficquery", logf)
	if err != nil {
		return err
	}
	defer func() { d.Close(o.keep || err != nil) }()
	if err := d.StartAdmin(ctx, "trafficquery"); err != nil {
		return err
	}
	group := groupName(queryGroup)
	if _, err := d.API.CreateGroup(ctx, apitypes.Group{Name: group}); err != nil {
		return err
	}
	if _, err := d.API.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: queryHost, TTL: "1h"}); err != nil {
		return err
	}
	var instances []string
	for i := range o.queryInst {
		name := instanceName(queryGroup, i)
		_, err := d.API.CreateInstance(ctx, apitypes.Instance{Name: name, Group: group, Host: queryHost,
			Listen: fmt.Sprintf("127.0.0.1:%d", 10000+i), StatusListen: fmt.Sprintf("127.0.0.1:%d", 35000+i)})
		if err != nil {
			return err
		}
		instances = append(instances, name)
	}
	var fill filled
	err = d.RestartAdmin(ctx, func() error {
		var ferr error
		fill, ferr = prefill(ctx, filepath.Join(d.AdminDir, adminnode.StoreFile), instances, routesOf(queryGroup, o.routes))
		return ferr
	})
	if err != nil {
		return err
	}
	pid := d.Admin().Pid()
	q := client.MetricsQuery{Group: group, Since: day, Step: time.Minute}
	ask := func() (apitypes.MetricsAnswer, time.Duration, error) {
		start := time.Now()
		ans, err := d.API.Metrics(ctx, q)
		took := time.Since(start)
		if err == nil {
			err = fill.check(&ans)
		}
		return ans, took, err
	}
	logf("querying %s over %s at %s, %d times one after the other", group, q.Since, q.Step, o.queries)
	first, cold, err := ask()
	if err != nil {
		return err
	}
	loadBefore := measure.LoadAvg()
	seq := make([]time.Duration, o.queries)
	cpu0, t0 := measure.ProcCPU(pid), time.Now()
	for i := range seq {
		if _, seq[i], err = ask(); err != nil {
			return err
		}
	}
	seqCPU, seqWall := measure.ProcCPU(pid)-cpu0, time.Since(t0)

	logf("and %d spread over %d clients at once", o.queries, o.queryConc)
	conc := make([]time.Duration, o.queries)
	errs := make([]error, o.queryConc)
	var wg sync.WaitGroup
	cpu0, t0 = measure.ProcCPU(pid), time.Now()
	for c := range o.queryConc {
		wg.Go(func() {
			for i := c; i < len(conc); i += o.queryConc {
				if _, conc[i], errs[c] = ask(); errs[c] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	concCPU, concWall := measure.ProcCPU(pid)-cpu0, time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	rss, _ := measure.ProcStatus(pid, "VmRSS")
	hwm, _ := measure.ProcStatus(pid, "VmHWM")
	body, _ := json.Marshal(first)

	fmt.Println()
	fmt.Printf("Traffic query: GET /api/v1/metrics/query?group=%s&since=24h&step=1m through the admin node over HTTPS\n", group)
	fmt.Printf("  store: %d hours of group %s (%d instances × %d routes × 2 classes = %d series every 10 s) written by adminnode/store's IngestTraffic while the admin node was stopped:\n",
		int(store.TrafficFineRetention.Hours()), group, o.queryInst, o.routes, 2*o.queryInst*o.routes)
	fmt.Printf("    %d batches, %d series in %.1f s, then MaintainTraffic rolled them up into 1 min points in %.1f s; %.1f MiB of pages\n",
		fill.batches, fill.series, fill.took.Seconds(), fill.rollup.Seconds(), mib(fill.pages))
	fmt.Printf("  answer: %d points (%d with requests) from %s to %s at %d s read at %d s, %d requests in all (checked against what was written), %.0f KiB of JSON\n",
		len(first.Points), nonEmpty(&first), first.From.Format("Jan 2 15:04"), first.To.Format("Jan 2 15:04"), first.StepSeconds, first.ResolutionSeconds,
		first.Totals.Requests, float64(len(body))/1024)
	fmt.Printf("  load average %s before, %s after (%d CPUs)\n", loadBefore, measure.LoadAvg(), runtime.NumCPU())
	fmt.Println()
	fmt.Printf("    first query        %.1f ms (the first since the admin node started)\n", measure.MS(cold))
	latencyRow := func(what string, ds []time.Duration, cpu, wall time.Duration) {
		fmt.Printf("    %-18s p50 %.1f ms, p99 %.1f ms, max %.1f ms; %.1f queries/s; admin CPU %.1f ms per query\n", what,
			measure.MS(measure.Percentile(ds, 50)), measure.MS(measure.Percentile(ds, 99)), measure.MS(measure.Percentile(ds, 100)),
			float64(len(ds))/wall.Seconds(), measure.MS(cpu)/float64(len(ds)))
	}
	latencyRow(fmt.Sprintf("%d sequential", o.queries), seq, seqCPU, seqWall)
	latencyRow(fmt.Sprintf("%d, %d at once", o.queries, o.queryConc), conc, concCPU, concWall)
	fmt.Printf("    admin memory       RSS %.1f MiB after the queries, VmHWM %.1f MiB\n", rss, hwm)
	return nil
}

// prefill writes 24 hours of the group's traffic, up to now, into the
// store at path, as its admin node would have stored it: a batch per 10 s
// of the host's node manager (IngestTraffic at the batch's end), then
// MaintainTraffic to roll the minutes up and prune what is older than
// the 10 s points' retention.
func prefill(ctx context.Context, path string, instances []string, routes []route) (filled, error) {
	f := filled{requests: map[int64]uint64{}}
	s, err := store.Open(path)
	if err != nil {
		return f, err
	}
	defer s.Close()
	lim := store.TrafficLimits{MaxRoutes: api.DefaultTrafficMaxRoutes, MaxConsumers: api.DefaultTrafficMaxConsumers}
	rng := rand.New(rand.NewPCG(1, 0x71756572))
	end := time.Now().Truncate(store.TrafficFine)
	n := int(store.TrafficFineRetention / store.TrafficFine)
	logf("filling the store with %d batches: %s of %d instances", n, store.TrafficFineRetention, len(instances))
	began := time.Now()
	var series []traffic.DomainSeries
	for i := range n {
		at := end.Add(-time.Duration(n-1-i) * store.TrafficFine)
		series = series[:0]
		for _, in := range instances {
			series = instanceSeries(series, rng, groupName(queryGroup), in, routes, store.TrafficFine)
		}
		b := traffic.Batch{Node: queryHost, Seq: uint64(i + 1), Start: at.Add(-store.TrafficFine), End: at, Series: series}
		if _, err := s.IngestTraffic(ctx, b, lim, at); err != nil {
			return f, err
		}
		// The store counts a batch at the middle of its span.
		minute := at.Add(-store.TrafficFine / 2).Truncate(time.Minute).Unix()
		for _, x := range series {
			f.requests[minute] += x.Requests
		}
		f.batches++
		f.series += len(series)
	}
	f.took = time.Since(began)
	began = time.Now()
	if _, err := s.MaintainTraffic(ctx, end); err != nil {
		return f, err
	}
	f.rollup = time.Since(began)
	u, err := boltfile.ReadUsage(path)
	f.pages = u.Size
	return f, err
}

// check compares an answer's total with the requests written in its
// range.
func (f *filled) check(a *apitypes.MetricsAnswer) error {
	var want uint64
	for m, n := range f.requests {
		if m >= a.From.Unix() && m < a.To.Unix() {
			want += n
		}
	}
	if a.Totals.Requests != want {
		return fmt.Errorf("query from %s to %s: %d requests, %d written in that range", a.From, a.To, a.Totals.Requests, want)
	}
	return nil
}

func nonEmpty(a *apitypes.MetricsAnswer) int {
	n := 0
	for _, p := range a.Points {
		if p.Requests > 0 {
			n++
		}
	}
	return n
}
