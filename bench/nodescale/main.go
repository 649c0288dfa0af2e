// Command nodescale measures what a fleet of node managers costs the admin
// node: it starts a real admin node process (gatehouse admin init + admin
// run), declares a host with one instance for each simulated node manager,
// joins them all (a real CSR each, a real client certificate each), and has
// each keep what a node manager keeps open: its own mutual-TLS client (its
// own transport, so its own connection), a heartbeat every 5 s, and the
// blocking queries on its instances and on its group's deployment. After a
// warm-up it samples the admin node's CPU and memory from /proc, then times
// the fan-out of deployments to the blocking queries. See bench/README.md.
//
// With -postgres the domain is in a PostgreSQL database (a real server,
// started as the tests start it, durable) and -admins admin nodes serve
// it, the simulated node managers spread over them: node i talks to
// admin node i mod -admins first, as node run --addr with that one first.
// PostgreSQL's CPU (the postmaster and its backends) is measured beside
// each admin node's.
//
// With -profile DIR the admin nodes are this program itself in other
// processes (adminnode.Run, what `gatehouse admin run` runs, plus
// net/http/pprof on another loopback port), and a CPU and a heap profile
// of the first are taken after the measurement.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof" // served by the -serve-admin mode only
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
	"github.com/gatehouse/gatehouse/internal/pause"
	"github.com/gatehouse/gatehouse/internal/pgtest"
)

type options struct {
	bin         string
	nodes       int
	groups      int
	heartbeat   time.Duration
	wait        time.Duration
	ramp        time.Duration
	warmup      time.Duration
	window      time.Duration
	concurrency int
	profile     string
	profileFor  time.Duration
	keep        bool
	postgres    bool
	admins      int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve-admin" {
		serveAdmin(os.Args[2:])
		return
	}
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gatehouse", "the gatehouse binary (admin init, and admin run unless -profile)")
	flag.IntVar(&o.nodes, "nodes", 1000, "simulated node managers, one host and one instance each")
	flag.IntVar(&o.groups, "groups", 10, "groups the instances are spread over, a deployment each")
	flag.DurationVar(&o.heartbeat, "heartbeat", 5*time.Second, "heartbeat interval of every node")
	flag.DurationVar(&o.wait, "wait", 30*time.Second, "wait of the blocking queries (node run --wait)")
	flag.DurationVar(&o.ramp, "ramp", 30*time.Second, "nodes start at random times over this long (0: all at once)")
	flag.DurationVar(&o.warmup, "warmup", 30*time.Second, "pause after the last node started, before measuring")
	flag.DurationVar(&o.window, "window", 60*time.Second, "measurement window")
	flag.IntVar(&o.concurrency, "concurrency", 16, "parallel API calls while setting up and joining")
	flag.StringVar(&o.profile, "profile", "", "run the admin node in-process with pprof and write a CPU and a heap profile here")
	flag.DurationVar(&o.profileFor, "profile-for", 30*time.Second, "length of the CPU profile (after the measurement window)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (admin data dir and log)")
	flag.BoolVar(&o.postgres, "postgres", false, "the domain in PostgreSQL (a server started for the run) instead of admin.db")
	flag.IntVar(&o.admins, "admins", 1, "admin nodes serving the domain (more than 1 needs -postgres); the nodes are spread over them")
	flag.Parse()
	if o.nodes < 1 || o.groups < 1 || o.groups > o.nodes || o.concurrency < 1 || o.admins < 1 {
		fmt.Fprintln(os.Stderr, "nodescale: -nodes, -groups, -concurrency, -admins must be positive and -groups <= -nodes")
		os.Exit(2)
	}
	if o.admins > 1 && !o.postgres {
		fmt.Fprintln(os.Stderr, "nodescale: -admins above 1 needs -postgres: only a domain in PostgreSQL has several admin nodes")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "nodescale: error:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "nodescale: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// serveAdmin is the admin node of -profile: adminnode.Run, as `gatehouse
// admin run` calls it, and pprof on another loopback port.
func serveAdmin(args []string) {
	fs := flag.NewFlagSet("serve-admin", flag.ExitOnError)
	dir := fs.String("data-dir", "", "")
	listen := fs.String("listen", "", "")
	pprofAddr := fs.String("pprof", "", "")
	storeFile := fs.String("store-file", "", "")
	fs.Parse(args)
	var dsn string
	if *storeFile != "" {
		data, err := os.ReadFile(*storeFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		dsn, _, _ = strings.Cut(string(data), "\n")
	}
	l, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(l, http.DefaultServeMux)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := hclog.New(&hclog.LoggerOptions{Name: "admin", Level: hclog.Info, Output: os.Stderr})
	if err := adminnode.Run(ctx, adminnode.RunOptions{DataDir: *dir, Store: dsn, Listen: *listen, Logger: logger,
		LostAfter: 30 * time.Second, OfflineAfter: 2 * time.Hour, RemoveAfter: 7 * 24 * time.Hour}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// bench is one run.
type bench struct {
	o         options
	d         *localdomain.Domain
	pg        *pgtest.Server
	pprofURL  string
	nodes     []*node
	hb        *measure.Latencies
	watchErrs atomic.Int64
	answers   [2]atomic.Int64 // blocking query answers: instances, deployment
	// moves counts the nodes' moves from one admin node to another;
	// causes counts them by reason.
	moves  atomic.Int64
	mu     sync.Mutex
	causes map[string]int
}

func run(ctx context.Context, o options) (err error) {
	if err := measure.RaiseFileLimit(2*o.nodes + 512); err != nil {
		return err
	}
	d, err := localdomain.New(o.bin, "nodescale", logf)
	if err != nil {
		return err
	}
	defer func() { d.Close(o.keep || err != nil) }()
	b := &bench{o: o, d: d, hb: &measure.Latencies{}}
	b.causes = map[string]int{}
	d.OnFailover = func(from, to string, cause error) {
		b.moves.Add(1)
		b.mu.Lock()
		b.causes[moveCause(cause)]++
		b.mu.Unlock()
	}
	if err := b.startAdmin(ctx); err != nil {
		return err
	}
	setupBegan := time.Now()
	if err := b.declare(ctx); err != nil {
		return err
	}
	declared := time.Since(setupBegan)
	joinBegan := time.Now()
	if err := b.join(ctx); err != nil {
		return err
	}
	joined := time.Since(joinBegan)

	runCtx, stopNodes := context.WithCancel(ctx)
	defer stopNodes()
	logf("starting %d nodes over %s", o.nodes, o.ramp)
	var wg sync.WaitGroup
	for _, n := range b.nodes {
		wg.Go(func() { n.run(runCtx, b) })
	}
	defer wg.Wait()
	defer stopNodes()
	if !pause.For(ctx, o.ramp+o.warmup) {
		return ctx.Err()
	}
	logf("measuring for %s", o.window)
	m, err := b.measure(ctx)
	if err != nil {
		return err
	}
	// Profiles are of the same steady state, before the fan-out.
	var prof []string
	if o.profile != "" {
		if prof, err = b.takeProfiles(ctx); err != nil {
			return err
		}
	}
	// And one of the fan-out, which takes less than fanOutProfile.
	var fanProf chan []string
	if o.profile != "" {
		fanProf = make(chan []string, 1)
		go func() { fanProf <- b.profileFanOut(ctx) }()
	}
	fan, err := b.fanOut(ctx)
	if err != nil {
		return err
	}
	if fanProf != nil {
		prof = append(prof, <-fanProf...)
	}
	b.report(m, fan, declared, joined, prof)
	return nil
}

// startAdmin inits a domain (in PostgreSQL with -postgres) and starts
// its admin nodes: with -profile, this program's -serve-admin, so that
// pprof can reach them (the first one's is profiled).
func (b *bench) startAdmin(ctx context.Context) error {
	if b.o.postgres {
		var err error
		if b.pg, err = b.d.StartPostgres(ctx); err != nil {
			return err
		}
	}
	if b.o.profile != "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		b.d.RunAdmin = func(dataDir, listen string) *exec.Cmd {
			pprofAddr, err := measure.FreeAddr()
			if err != nil {
				pprofAddr = "127.0.0.1:0"
			}
			if b.pprofURL == "" {
				b.pprofURL = "http://" + pprofAddr
			}
			cmd := exec.Command(self, "-serve-admin", "-data-dir", dataDir, "-listen", listen, "-pprof", pprofAddr)
			if b.d.StoreFile != "" {
				cmd.Args = append(cmd.Args, "-store-file", b.d.StoreFile)
			}
			return cmd
		}
	}
	if err := b.d.StartAdmin(ctx, "scale"); err != nil {
		return err
	}
	for len(b.d.Admins()) < b.o.admins {
		if _, err := b.d.AddAdmin(ctx); err != nil {
			return err
		}
	}
	return nil
}

// addrs are the admin nodes node i talks to, in its order: admin node
// i mod -admins first, the others after it.
func (b *bench) addrs(i int) []string {
	admins := b.d.Admins()
	out := make([]string, 0, len(admins))
	for k := range admins {
		out = append(out, admins[(i+k)%len(admins)].URL)
	}
	return out
}

func groupName(i int) string { return fmt.Sprintf("g%02d", i) }

const draftYAML = `upstreams:
  - name: backend
    targets:
      - address: 127.0.0.1:9
services:
  - name: api
    upstream: backend
    routes:
      - name: all
        paths: ["/%s/*"]
`

// deploy changes group g's draft (so that every deployment is a change)
// and deploys it.
func (b *bench) deploy(ctx context.Context, g, message string) (apitypes.Deployment, error) {
	d, err := b.d.API.GetDraft(ctx, g)
	if err != nil {
		return apitypes.Deployment{}, fmt.Errorf("get draft of %s: %w", g, err)
	}
	cfg := fmt.Appendf(nil, draftYAML, g+"-"+measure.RandomHex(3))
	if _, err := b.d.API.PutDraft(ctx, g, cfg, "application/yaml", d.Version); err != nil {
		return apitypes.Deployment{}, fmt.Errorf("put draft of %s: %w", g, err)
	}
	dep, err := b.d.API.Deploy(ctx, g, apitypes.DeployRequest{Message: message})
	if err != nil {
		return apitypes.Deployment{}, fmt.Errorf("deploy %s: %w", g, err)
	}
	return dep, nil
}

// declare makes the groups with a deployment each, and a host with a join
// token and one instance for every node.
func (b *bench) declare(ctx context.Context) error {
	o := b.o
	logf("declaring %d groups, %d hosts with join tokens and instances", o.groups, o.nodes)
	for g := range o.groups {
		name := groupName(g)
		if _, err := b.d.API.CreateGroup(ctx, apitypes.Group{Name: name}); err != nil {
			return fmt.Errorf("create group %s: %w", name, err)
		}
		if _, err := b.deploy(ctx, name, "initial"); err != nil {
			return err
		}
	}
	b.nodes = make([]*node, o.nodes)
	return measure.Parallel(ctx, o.nodes, o.concurrency, func(i int) error {
		n := &node{i: i, host: fmt.Sprintf("host-%04d", i), instance: fmt.Sprintf("inst-%04d", i), group: groupName(i % o.groups),
			kick: make(chan struct{}, 1)}
		jt, err := b.d.API.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: n.host, TTL: "2h"})
		if err != nil {
			return fmt.Errorf("join token for %s: %w", n.host, err)
		}
		n.token = jt.Token
		_, err = b.d.API.CreateInstance(ctx, apitypes.Instance{Name: n.instance, Group: n.group, Host: n.host,
			Listen: "127.0.0.1:8080", StatusListen: "127.0.0.1:8085"})
		if err != nil {
			return fmt.Errorf("instance %s: %w", n.instance, err)
		}
		b.nodes[i] = n
		return nil
	})
}

// join has every node join as a node manager does: its own key, a CSR
// without a name, the join token; then its own mutual-TLS client.
func (b *bench) join(ctx context.Context) error {
	logf("joining %d nodes", len(b.nodes))
	return measure.Parallel(ctx, len(b.nodes), b.o.concurrency, func(i int) error {
		n := b.nodes[i]
		var err error
		if n.c, err = b.d.JoinSimulated(ctx, n.token, b.o.wait+b.o.wait/8+30*time.Second, b.addrs(i)...); err != nil {
			return fmt.Errorf("join %s: %w", n.host, err)
		}
		return nil
	})
}

// node is one simulated node manager.
type node struct {
	i                      int
	host, instance, group  string
	token                  string
	c                      *client.Client
	kick                   chan struct{}
	applied                atomic.Uint64 // the deployment number its "gateway" runs
	checksum               atomic.Value  // string
	deployAt, instancesAt  atomic.Int64  // unix ns of the last answer that changed the index
	instancesIndex         atomic.Uint64
	hbOK, hbErr, watchErrs atomic.Int64
}

func (n *node) run(ctx context.Context, b *bench) {
	if b.o.ramp > 0 && !pause.For(ctx, mrand.N(b.o.ramp)) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { n.watchInstances(ctx, b) })
	wg.Go(func() { n.watchDeployment(ctx, b) })
	wg.Go(func() { n.heartbeats(ctx, b) })
	wg.Wait()
}

// heartbeats beats every interval from a random phase, and at once when a
// new deployment is "applied", as the node manager does after a gateway's
// report.
func (n *node) heartbeats(ctx context.Context, b *bench) {
	if !pause.For(ctx, mrand.N(b.o.heartbeat)) {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
		sum, _ := n.checksum.Load().(string)
		hb := apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{{Name: n.instance, Process: "running",
			PID: 100000 + n.i, AppliedDeployment: n.applied.Load(), AppliedChecksum: sum, Ready: true}}}
		start := time.Now()
		_, err := n.c.Heartbeat(ctx, hb)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.hbErr.Add(1)
		} else {
			b.hb.Add(start, time.Since(start))
		}
		t.Reset(b.o.heartbeat)
	}
}

func (n *node) watchInstances(ctx context.Context, b *bench) {
	var known *uint64
	for ctx.Err() == nil {
		ans, err := n.c.WatchInstances(ctx, known, b.o.wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.watchErrs.Add(1)
			pause.For(ctx, time.Second+mrand.N(time.Second))
			continue
		}
		b.answers[0].Add(1)
		if known == nil || ans.Index != *known {
			n.instancesIndex.Store(ans.Index)
			n.instancesAt.Store(time.Now().UnixNano())
		}
		idx := ans.Index
		known = &idx
	}
}

func (n *node) watchDeployment(ctx context.Context, b *bench) {
	var known *uint64
	for ctx.Err() == nil {
		ans, err := n.c.WatchDeployment(ctx, n.group, known, b.o.wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.watchErrs.Add(1)
			pause.For(ctx, time.Second+mrand.N(time.Second))
			continue
		}
		b.answers[1].Add(1)
		if (known == nil || ans.Index != *known) && ans.Deployment != nil {
			n.deployAt.Store(time.Now().UnixNano())
			n.checksum.Store(ans.Deployment.Checksum)
			n.applied.Store(ans.Deployment.Number)
			select {
			case n.kick <- struct{}{}:
			default:
			}
		}
		idx := ans.Index
		known = &idx
	}
}

// measurement is the steady state over the window.
type measurement struct {
	// Usage is the first admin node's, and the window's.
	measure.Usage
	// admins are every admin node's, the first included.
	admins []adminUsage
	// pg is PostgreSQL's (the postmaster and its backends), with
	// -postgres.
	pg                    *measure.Usage
	hb                    []time.Duration
	hbErrs, watchErrs     int64
	moves                 int64
	answers               [2]int64
	simConns              int
	goroutines            string
	loadBefore, loadAfter string
	hbPerSec              float64
}

// adminUsage is one admin node's part of the measurement.
type adminUsage struct {
	name, url            string
	pid                  int
	usage                measure.Usage
	established, threads int
}

func (b *bench) measure(ctx context.Context) (measurement, error) {
	m := measurement{loadBefore: measure.LoadAvg()}
	var procs []measure.Process
	for _, a := range b.d.Admins() {
		m.admins = append(m.admins, adminUsage{name: a.Name, url: a.URL, pid: a.Proc().Pid()})
		procs = append(procs, measure.Process{Pid: a.Proc().Pid(), What: a.Name, Exited: a.Proc().Done()})
	}
	if b.pg != nil {
		procs = append(procs, measure.Process{Pid: b.pg.PID(), What: "PostgreSQL", Tree: true})
	}
	hbErr0, watch0, moves0 := b.hbErrs(), b.watchErrs.Load(), b.moves.Load()
	ans0 := [2]int64{b.answers[0].Load(), b.answers[1].Load()}
	half := time.Now().Add(b.o.window / 2)
	sampled := false
	us, err := measure.WatchAll(ctx, procs, b.o.window, func() {
		if !sampled && time.Now().After(half) {
			sampled = true
			for i := range m.admins {
				a := &m.admins[i]
				a.established = establishedSockets(a.pid)
				a.threads = int(must(measure.ProcStatus(a.pid, "Threads")))
			}
			m.simConns = establishedSockets(os.Getpid())
		}
	})
	if err != nil {
		return m, err
	}
	for i := range m.admins {
		m.admins[i].usage = us[i]
	}
	m.Usage = us[0]
	if b.pg != nil {
		m.pg = &us[len(us)-1]
	}
	m.hb = b.hb.Between(m.Start, m.End)
	m.hbPerSec = float64(len(m.hb)) / m.Window.Seconds()
	m.hbErrs = b.hbErrs() - hbErr0
	m.watchErrs = b.watchErrs.Load() - watch0
	m.moves = b.moves.Load() - moves0
	m.answers = [2]int64{b.answers[0].Load() - ans0[0], b.answers[1].Load() - ans0[1]}
	m.loadAfter = measure.LoadAvg()
	if b.pprofURL != "" {
		m.goroutines = goroutines(b.pprofURL)
	}
	return m, nil
}

func (b *bench) hbErrs() int64 {
	var n int64
	for _, nd := range b.nodes {
		n += nd.hbErr.Load()
	}
	return n
}

// fan is the fan-out of one deployment (or of one per group).
type fan struct {
	what         string
	watchers     int
	post         time.Duration // POST(s) answered
	last, p50    time.Duration // deployment watches answered
	missing      int
	instLast     time.Duration // instance watches answered (every node)
	instAnswered int
	statusAll    time.Duration // GET /groups/{g}/instances shows all applied (single group only)
	cpu          float64       // admin CPU seconds over the fan-out
}

// fanOut deploys one group, then every group back to back, and times how
// long the blocking queries take to answer.
func (b *bench) fanOut(ctx context.Context) ([]fan, error) {
	var out []fan
	for _, groups := range [][]string{{groupName(0)}, allGroups(b.o.groups)} {
		if !pause.For(ctx, 3*time.Second) {
			return nil, ctx.Err()
		}
		f, err := b.fanOutOnce(ctx, groups)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func allGroups(n int) []string {
	var out []string
	for g := range n {
		out = append(out, groupName(g))
	}
	return out
}

func (b *bench) fanOutOnce(ctx context.Context, groups []string) (fan, error) {
	f := fan{what: fmt.Sprintf("deploy %s", groups[0])}
	if len(groups) > 1 {
		f.what = fmt.Sprintf("deploy all %d groups, one after the other", len(groups))
	}
	logf("fan-out: %s", f.what)
	pid := b.d.Admin().Pid()
	// Draft changes bump the index too: make them first, so that only the
	// deployments are timed.
	drafts := map[string]uint64{}
	for _, g := range groups {
		d, err := b.d.API.GetDraft(ctx, g)
		if err != nil {
			return f, err
		}
		nd, err := b.d.API.PutDraft(ctx, g, fmt.Appendf(nil, draftYAML, g+"-"+measure.RandomHex(3)), "application/yaml", d.Version)
		if err != nil {
			return f, err
		}
		drafts[g] = nd.Version
	}
	if !pause.For(ctx, 2*time.Second) {
		return f, ctx.Err()
	}
	cpu0 := measure.ProcCPU(pid)
	t0 := time.Now()
	want := map[string]uint64{}
	for _, g := range groups {
		dep, err := b.d.API.Deploy(ctx, g, apitypes.DeployRequest{Message: "fan-out", DraftVersion: drafts[g]})
		if err != nil {
			return f, fmt.Errorf("deploy %s: %w", g, err)
		}
		want[g] = dep.Number
	}
	f.post = time.Since(t0)
	var watchers []*node
	for _, n := range b.nodes {
		if _, ok := want[n.group]; ok {
			watchers = append(watchers, n)
		}
	}
	f.watchers = len(watchers)
	statusDone := make(chan time.Duration, 1)
	if len(groups) == 1 {
		go func() { statusDone <- b.waitStatus(ctx, groups[0], want[groups[0]], t0) }()
	} else {
		statusDone <- 0
	}
	deadline := t0.Add(b.o.wait + 10*time.Second)
	for time.Now().Before(deadline) {
		f.missing = 0
		for _, n := range watchers {
			if n.applied.Load() < want[n.group] {
				f.missing++
			}
		}
		if f.missing == 0 {
			break
		}
		if !pause.For(ctx, 5*time.Millisecond) {
			return f, ctx.Err()
		}
	}
	var at []time.Duration
	for _, n := range watchers {
		if n.applied.Load() >= want[n.group] {
			at = append(at, time.Duration(n.deployAt.Load()-t0.UnixNano()))
		}
	}
	f.last, f.p50 = measure.Percentile(at, 100), measure.Percentile(at, 50)
	// Every node's instance watch is answered too (the index is global):
	// give them until the same deadline, checked once all deployments
	// are in.
	for time.Now().Before(deadline) {
		f.instAnswered, f.instLast = 0, 0
		for _, n := range b.nodes {
			if at := n.instancesAt.Load(); at > t0.UnixNano() {
				f.instAnswered++
				f.instLast = max(f.instLast, time.Duration(at-t0.UnixNano()))
			}
		}
		if f.instAnswered == len(b.nodes) || time.Since(t0) > f.last+2*time.Second {
			break
		}
		pause.For(ctx, 10*time.Millisecond)
	}
	f.statusAll = <-statusDone
	if !pause.For(ctx, time.Second) {
		return f, ctx.Err()
	}
	f.cpu = (measure.ProcCPU(pid) - cpu0).Seconds()
	return f, nil
}

// waitStatus polls the group's instances (every 20 ms) until all show the
// deployment applied; it returns the time since t0, 0 after 30 s.
func (b *bench) waitStatus(ctx context.Context, g string, number uint64, t0 time.Time) time.Duration {
	for time.Since(t0) < 30*time.Second && ctx.Err() == nil {
		ins, err := b.d.API.GroupInstances(ctx, g)
		if err == nil {
			all := len(ins) > 0
			for _, in := range ins {
				if in.Observed == nil || in.Observed.AppliedDeployment != number {
					all = false
					break
				}
			}
			if all {
				return time.Since(t0)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}

// takeProfiles takes a CPU profile of the admin node over profileFor, and
// a heap profile, and returns pprof's summary of each.
func (b *bench) takeProfiles(ctx context.Context) ([]string, error) {
	dir := b.o.profile
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf("CPU profile of the admin node for %s", b.o.profileFor)
	cpuFile := filepath.Join(dir, "admin.cpu.pprof")
	heapFile := filepath.Join(dir, "admin.heap.pprof")
	pid := b.d.Admin().Pid()
	cpu0, t0 := measure.ProcCPU(pid), time.Now()
	if err := fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", b.pprofURL, int(b.o.profileFor.Seconds())), cpuFile); err != nil {
		return nil, err
	}
	procPct := 100 * float64(measure.ProcCPU(pid)-cpu0) / float64(time.Since(t0))
	if err := fetch(ctx, b.pprofURL+"/debug/pprof/heap?gc=1", heapFile); err != nil {
		return nil, err
	}
	self, _ := os.Executable()
	out := []string{fmt.Sprintf("Admin node over the CPU profile, per /proc/%d/stat: %.1f %% of one core (the profile's \"Total samples\" counts what Go's profiler sees: less the kernel's share)", pid, procPct)}
	for _, args := range [][]string{
		{"-top", "-nodecount=25", self, cpuFile},
		{"-top", "-cum", "-nodecount=45", self, cpuFile},
		{"-top", "-sample_index=inuse_space", "-nodecount=20", self, heapFile},
	} {
		cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof"}, args...)...)
		text, err := cmd.Output()
		if err != nil {
			text = fmt.Appendf(text, "(go tool pprof %s: %v)", strings.Join(args, " "), err)
		}
		out = append(out, fmt.Sprintf("$ go tool pprof %s\n%s", strings.Join(args, " "), text))
	}
	return out, nil
}

// fanOutProfile is the length of the fan-out's CPU profile: the fan-out
// takes about 15 s.
const fanOutProfile = 25 * time.Second

// profileFanOut takes a CPU profile of the admin node over the fan-out.
func (b *bench) profileFanOut(ctx context.Context) []string {
	file := filepath.Join(b.o.profile, "admin.fanout.cpu.pprof")
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", b.pprofURL, int(fanOutProfile.Seconds()))
	if err := fetch(ctx, url, file); err != nil {
		return []string{fmt.Sprintf("(fan-out profile: %v)", err)}
	}
	self, _ := os.Executable()
	args := []string{"-top", "-cum", "-nodecount=45", self, file}
	text, err := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof"}, args...)...).Output()
	if err != nil {
		text = fmt.Appendf(text, "(go tool pprof: %v)", err)
	}
	return []string{fmt.Sprintf("During the fan-out (%s from its start):\n$ go tool pprof %s\n%s", fanOutProfile, strings.Join(args, " "), text)}
}

func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func goroutines(pprofURL string) string {
	resp, err := http.Get(pprofURL + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	// "goroutine profile: total 4012"
	_, n, _ := strings.Cut(strings.TrimSpace(line), "total ")
	return n
}

func (b *bench) report(m measurement, fans []fan, declared, joined time.Duration, prof []string) {
	o := b.o
	per := o.nodes / o.groups
	fmt.Println()
	if o.postgres {
		fmt.Printf("%d admin node(s) of a domain in PostgreSQL with %d simulated node managers (%d groups of %d; one host, one instance each; node i on admin node i mod %d first)\n",
			o.admins, o.nodes, o.groups, per, o.admins)
		fmt.Printf("  PostgreSQL: postmaster pid %d (fsync and synchronous commit on; shared_buffers 16MB)\n", b.pg.PID())
	} else {
		fmt.Printf("Admin node with %d simulated node managers (%d groups of %d; one host, one instance each)\n", o.nodes, o.groups, per)
	}
	for _, a := range b.d.Admins() {
		fmt.Printf("  %s: %s (pid %d)\n", a.Name, strings.Join(a.Proc().Cmd.Args, " "), a.Proc().Pid())
	}
	fmt.Printf("  each node: own mTLS client, heartbeat every %s, blocking queries on /instances and /groups/{g}/deployment with wait=%s\n", o.heartbeat, o.wait)
	fmt.Printf("  setup: groups, hosts, tokens, instances %.1f s; %d joins %.1f s; nodes started over %s, then %s warm-up\n",
		declared.Seconds(), o.nodes, joined.Seconds(), o.ramp, o.warmup)
	fmt.Printf("  load average %s before the window, %s after (%d CPUs)\n", m.loadBefore, m.loadAfter, runtime.NumCPU())
	fmt.Println()
	fmt.Printf("  steady state over %.0f s:\n", m.Window.Seconds())
	for _, a := range m.admins {
		label := ""
		if len(m.admins) > 1 {
			label = " " + a.name
		}
		fmt.Printf("    admin CPU%-10s%6.1f %% of one core     (target <= 25 %%: %s)\n", label, 100*a.usage.CPU, verdict(a.usage.CPU <= 0.25))
		fmt.Printf("    admin RSS%-10s%6.1f MiB mean, %.1f MiB max in the window; peak VmHWM %.1f MiB since start (target <= 300 MB = %.0f MiB: %s)\n",
			label, a.usage.RSSMean, a.usage.RSSMax, a.usage.HWM, 300e6/(1<<20), verdict(a.usage.RSSMax*(1<<20) <= 300e6))
	}
	if m.pg != nil {
		fmt.Printf("    PostgreSQL CPU     %6.1f %% of one core     (the postmaster and all its backends)\n", 100*m.pg.CPU)
	}
	fmt.Printf("    heartbeats         %6.1f /s handled (%d in the window, %d failed); latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		m.hbPerSec, len(m.hb), m.hbErrs, measure.MS(measure.Percentile(m.hb, 50)), measure.MS(measure.Percentile(m.hb, 99)), measure.MS(measure.Percentile(m.hb, 100)))
	fmt.Printf("    blocking queries   %6.1f /s answered (instances %d, deployment %d in the window; %d failed)\n",
		float64(m.answers[0]+m.answers[1])/m.Window.Seconds(), m.answers[0], m.answers[1], m.watchErrs)
	extra := ""
	if m.goroutines != "" {
		extra = ", " + m.goroutines + " goroutines"
	}
	for _, a := range m.admins {
		fmt.Printf("    connections        %d ESTABLISHED TCP sockets held by %s (%d threads%s)\n", a.established, a.name, a.threads, extra)
		extra = ""
	}
	fmt.Printf("                       %d on the simulator's side\n", m.simConns)
	if len(m.admins) > 1 {
		fmt.Printf("    moves              %d in the window, %d since the nodes started (a node leaves an admin node on a failed request or a 5xx)\n", m.moves, b.moves.Load())
		b.mu.Lock()
		causes := slices.Collect(maps.Keys(b.causes))
		slices.SortFunc(causes, func(x, y string) int { return b.causes[y] - b.causes[x] })
		for _, c := range causes {
			fmt.Printf("      %6d  %s\n", b.causes[c], c)
		}
		b.mu.Unlock()
	}
	fmt.Printf("    simulator          %6.1f %% of one core (shares the machine with the admin node)\n", 100*m.SelfCPU)
	fmt.Println()
	fmt.Println("  fan-out (a deployment answers every blocking query on its group; t0 = before the POST):")
	for _, f := range fans {
		fmt.Printf("    %s: POST(s) %.1f ms; %d deployment watches answered: p50 %.1f ms, all %.1f ms",
			f.what, measure.MS(f.post), f.watchers, measure.MS(f.p50), measure.MS(f.last))
		if f.missing > 0 {
			fmt.Printf(" (%d NOT answered within %s)", f.missing, o.wait+10*time.Second)
		}
		fmt.Println()
		fmt.Printf("      instance watches answered too: %d of %d, the last at %.1f ms; admin CPU over the fan-out %.2f s",
			f.instAnswered, o.nodes, measure.MS(f.instLast), f.cpu)
		if f.statusAll > 0 {
			fmt.Printf("; GET /groups/%s/instances showed all %d applied at %.1f ms", groupName(0), f.watchers, measure.MS(f.statusAll))
		}
		fmt.Println()
	}
	for _, p := range prof {
		fmt.Println()
		fmt.Println(p)
	}
	if o.profile != "" {
		fmt.Printf("  profiles in %s (go tool pprof -http=: %s %s)\n", o.profile, os.Args[0], filepath.Join(o.profile, "admin.cpu.pprof"))
	}
}

// urlInError matches what makes errors of one kind differ: the request's
// URL and the addresses in it.
var urlInError = regexp.MustCompile(`"https?://[^"]*"|\d+\.\d+\.\d+\.\d+:\d+(->\d+\.\d+\.\d+\.\d+:\d+)?`)

// moveCause is the reason of a move without what differs from one
// request to another, so that moves can be counted by reason.
func moveCause(err error) string {
	return urlInError.ReplaceAllString(err.Error(), "…")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func must(v float64, _ error) float64 { return v }

// establishedSockets counts the process's TCP sockets in state
// ESTABLISHED: its socket inodes (/proc/<pid>/fd) looked up in
// /proc/<pid>/net/tcp and tcp6 (which list the whole network namespace).
func establishedSockets(pid int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "01" && mine[fields[9]] {
				n++
			}
		}
		f.Close()
	}
	return n
}
