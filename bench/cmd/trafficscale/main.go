// Command trafficscale measures the domain's traffic metrics
// (docs/metrics.md) through a real admin node process (gatehouse admin
// init + admin run), over the network:
//
//   - ingest: simulated node managers, each joined with a real CSR and
//     holding its own mutual-TLS client, POST /agent/v1/traffic a batch
//     of their gateways' increments every 10 s, as `gatehouse node run`
//     does. Over a window it measures the batches and series the admin
//     node absorbs, their acknowledgement's latency, the admin node's CPU
//     and memory, and how its store grows; then, the admin node stopped,
//     what the store holds per point and per day.
//   - query: the store of a new admin node filled (through package
//     adminnode/store, while it is stopped) with 24 hours of one group's
//     points, then GET /api/v1/metrics/query of that group over 24 h at
//     1 min, one after the other and a few at once.
//
// See bench/README.md ("Traffic").
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin         string
	run         []string
	nodes       int
	groups      int
	routes      int
	instances   int // per group
	interval    time.Duration
	warmup      time.Duration
	window      time.Duration
	concurrency int
	queries     int
	queryInst   int
	queryConc   int
	keep        bool
}

func main() {
	var o options
	var run string
	flag.StringVar(&o.bin, "bin", "bin/gatehouse", "the gatehouse binary (admin init, admin run)")
	flag.StringVar(&run, "run", "ingest,query", "the benchmarks to run: ingest, query or both")
	flag.IntVar(&o.nodes, "nodes", 1000, "simulated node managers, a host each")
	flag.IntVar(&o.groups, "groups", 50, "groups of the domain")
	flag.IntVar(&o.routes, "routes", 20, "routes of each group; an instance has a series per route and status class (2xx, 4xx)")
	flag.IntVar(&o.instances, "instances", 0, "instances of each group, spread over the hosts (0: 10, or more so that every host runs one)")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "how often each node manager sends a batch (node run --traffic-interval)")
	flag.DurationVar(&o.warmup, "warmup", 30*time.Second, "pause after the nodes started (each within one interval), before measuring")
	flag.DurationVar(&o.window, "window", 2*time.Minute, "measurement window of the ingest (2m after the 30s warm-up holds a roll-up of a minute of the run: the admin node rolls up every minute the minutes that ended 30 s before)")
	flag.IntVar(&o.concurrency, "concurrency", 16, "parallel API calls while setting up and joining")
	flag.IntVar(&o.queries, "queries", 200, "queries timed one after the other, and again spread over -query-concurrency clients")
	flag.IntVar(&o.queryInst, "query-instances", 10, "instances of the queried group")
	flag.IntVar(&o.queryConc, "query-concurrency", 4, "queries at once in the concurrent run")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directories (admin data dirs and logs)")
	flag.Parse()
	o.run = strings.Split(run, ",")
	if o.instances == 0 {
		o.instances = max(10, (o.nodes+o.groups-1)/o.groups)
	}
	switch {
	case o.nodes < 1 || o.groups < 1 || o.routes < 1 || o.instances < 1 || o.concurrency < 1 || o.queries < 1 || o.queryInst < 1 || o.queryConc < 1:
		usage("-nodes, -groups, -routes, -instances, -concurrency, -queries, -query-instances and -query-concurrency must be positive")
	case o.groups*o.instances < o.nodes:
		// A node manager without gateways sends no batch.
		usage(fmt.Sprintf("%d groups × %d instances run on fewer hosts than -nodes %d: every node manager needs a gateway to count", o.groups, o.instances, o.nodes))
	case o.interval < time.Second || o.window < o.interval:
		usage("-interval must be at least 1s and -window at least -interval")
	}
	for _, r := range o.run {
		if r != "ingest" && r != "query" {
			usage(fmt.Sprintf("-run %q: want ingest, query or both", run))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if slices.Contains(o.run, "ingest") {
		if err := runIngest(ctx, o); err != nil {
			fail(err)
		}
	}
	if slices.Contains(o.run, "query") {
		if err := runQuery(ctx, o); err != nil {
			fail(err)
		}
	}
}

func usage(msg string) {
	fmt.Fprintln(os.Stderr, "trafficscale:", msg)
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "trafficscale: error:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "trafficscale: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// mib is n bytes in MiB.
func mib(n int64) float64 { return float64(n) / (1 << 20) }

// gib is n bytes in GiB.
func gib(n float64) float64 { return n / (1 << 30) }
