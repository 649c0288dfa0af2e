// Command propagation measures how long a deployment takes to reach every
// instance of a group: the real admin node (gatehouse admin init + admin
// run), one real node manager (gatehouse node join + node run) and its
// gateway processes, all on this machine. See bench/README.md.
//
// Each round changes the draft, then times from POST
// /api/v1/groups/{g}/deployments until GET /api/v1/groups/{g}/instances shows
// every instance's observed.applied_deployment at the new number, polling
// the admin node in a tight loop. For insight, it also polls the node
// manager's GET /v1/instances (the gateways' own reports, before the
// heartbeat leg) and reads the node manager's JSON log for when the
// deployment arrived and when each gateway reported it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
)

const (
	domain = "bench"
	group  = "prop"
	host   = "bench-host"
)

type options struct {
	bin       string
	instances int
	rounds    int
	poll      time.Duration
	heartbeat time.Duration
	timeout   time.Duration
	idle      time.Duration
	local     bool
	keep      bool
	verbose   bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gatehouse", "the gatehouse binary to run")
	flag.IntVar(&o.instances, "instances", 10, "gateway instances on the host")
	flag.IntVar(&o.rounds, "rounds", 100, "deployments measured")
	flag.DurationVar(&o.poll, "poll", 2*time.Millisecond, "pause between two polls of an instance list")
	flag.DurationVar(&o.heartbeat, "heartbeat", 5*time.Second, "node run --heartbeat")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up on a round after this long")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "measure the idle CPU use of every process this long before the rounds")
	flag.BoolVar(&o.local, "local", true, "also poll the node manager's GET /v1/instances (costs the node manager CPU)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, data dirs)")
	flag.BoolVar(&o.verbose, "v", false, "print every round")
	flag.Parse()
	if o.instances < 1 || o.rounds < 1 || o.poll < 0 {
		fatalf("-instances and -rounds must be positive, -poll not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "propagation: error:", err)
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "propagation: "+format+"\n", args...)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "propagation: "+format+"\n", args...)
}

// bench is one run: the domain, its one host and a client of the host's
// node manager.
type bench struct {
	o       options
	d       *localdomain.Domain
	host    *localdomain.Host
	localHC *http.Client
}

func run(ctx context.Context, o options) (err error) {
	d, err := localdomain.New(o.bin, "propagation", logf)
	if err != nil {
		return err
	}
	defer func() { d.Close(o.keep || err != nil) }()
	b := &bench{o: o, d: d, localHC: &http.Client{Timeout: 10 * time.Second}}
	if err := b.setUp(ctx); err != nil {
		return err
	}
	return b.measure(ctx)
}

// setUp makes the domain, the host, the group, its instances and a first
// deployment, starts the node manager and waits until every instance is
// Healthy.
func (b *bench) setUp(ctx context.Context) error {
	o := b.o
	if err := b.d.StartAdmin(ctx, domain); err != nil {
		return err
	}
	if _, err := b.d.API.CreateGroup(ctx, apitypes.Group{Name: group, Description: "propagation benchmark"}); err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	var err error
	if b.host, err = b.d.JoinHost(ctx, host); err != nil {
		return err
	}
	for i := 1; i <= o.instances; i++ {
		listen, err := measure.FreeAddr()
		if err != nil {
			return err
		}
		status, err := measure.FreeAddr()
		if err != nil {
			return err
		}
		in := apitypes.Instance{Name: fmt.Sprintf("%s-%02d", group, i), Group: group, Host: host, Listen: listen, StatusListen: status}
		if _, err := b.d.API.CreateInstance(ctx, in); err != nil {
			return fmt.Errorf("create instance %s: %w", in.Name, err)
		}
	}
	first, err := b.deploy(ctx, 0)
	if err != nil {
		return err
	}
	logf("node run --heartbeat %s (%d instances)", o.heartbeat, o.instances)
	if err := b.d.StartNode(b.host, o.heartbeat); err != nil {
		return err
	}
	// Gossip is on, as the product runs: the admin node gives every
	// instance a gossip port, and the rounds start once each instance
	// sees all its peers alive, so that what gossip costs is measured.
	return b.host.Node.WaitUntil(ctx, 90*time.Second, "every instance Healthy and seeing its peers alive", func() bool {
		ins, err := b.d.API.GroupInstances(ctx, group)
		if err != nil || len(ins) != o.instances {
			return false
		}
		for _, in := range ins {
			if in.Status != "Healthy" || in.Observed == nil || in.Observed.AppliedDeployment != first.number {
				return false
			}
			alive := 0
			for _, p := range in.Observed.Peers {
				if p.State == "alive" {
					alive++
				}
			}
			if alive != o.instances-1 {
				return false
			}
		}
		return true
	})
}

// draft is the group's configuration in round r: one route whose path
// names the round, so that every deployment is a real change.
func draft(r int) []byte {
	return fmt.Appendf(nil, `upstreams:
  - name: backend
    targets:
      - address: 127.0.0.1:9
services:
  - name: api
    upstream: backend
    routes:
      - name: round
        paths: ["/round-%d/*"]
      - name: health
        paths: [/healthz]
`, r)
}

type deployed struct {
	number uint64
	t0     time.Time
	post   time.Duration
}

// deploy changes the draft for round r, lets the change's own wake-up of
// the node manager settle, then deploys and returns when the POST was
// sent (t0).
func (b *bench) deploy(ctx context.Context, r int) (deployed, error) {
	d, err := b.d.API.GetDraft(ctx, group)
	if err != nil {
		return deployed{}, fmt.Errorf("get draft: %w", err)
	}
	if _, err := b.d.API.PutDraft(ctx, group, draft(r), "application/yaml", d.Version); err != nil {
		return deployed{}, fmt.Errorf("put draft: %w", err)
	}
	// Any change wakes the node manager's watch of its instances; let that
	// pass, and do not start in step with the heartbeat ticker.
	if r > 0 {
		time.Sleep(200*time.Millisecond + mrand.N(300*time.Millisecond))
	}
	t0 := time.Now()
	dep, err := b.d.API.Deploy(ctx, group, apitypes.DeployRequest{Message: fmt.Sprintf("round %d", r)})
	if err != nil {
		return deployed{}, fmt.Errorf("deploy: %w", err)
	}
	return deployed{number: dep.Number, t0: t0, post: time.Since(t0)}, nil
}

// round is what one deployment took.
type round struct {
	number uint64
	post   time.Duration // the POST's own answer
	admin  time.Duration // t0 → the admin node shows every instance applied
	local  time.Duration // t0 → the node manager shows every instance applied
	// From the logs (zero when not found): the node manager received the
	// deployment, the last gateway applied it (gateway logs, to the
	// millisecond), the node manager had the last gateway's report.
	received, applied, reported time.Duration
	adminPolls, localPolls      int
	timedOut                    bool
}

func (b *bench) measure(ctx context.Context) error {
	o := b.o
	logf("idle for %s (baseline CPU)", o.idle)
	idle0, idleBegan := b.cpu(), time.Now()
	time.Sleep(o.idle)
	idle1, idleWall := b.cpu(), time.Since(idleBegan)
	logf("measuring %d rounds (poll every %s)", o.rounds, o.poll)
	cpu0, began := b.cpu(), time.Now()
	var rounds []round
	var t0s = map[uint64]time.Time{}
	var pollTimes []time.Duration
	for r := 1; r <= o.rounds; r++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		dep, err := b.deploy(ctx, r)
		if err != nil {
			return err
		}
		t0s[dep.number] = dep.t0
		rd := round{number: dep.number, post: dep.post}
		rctx, cancel := context.WithTimeout(ctx, o.timeout)
		localDone := make(chan struct{})
		go func() {
			defer close(localDone)
			if !o.local {
				return
			}
			p := measure.PollUntil(rctx, o.poll, dep.t0, func() bool { return b.localApplied(rctx, dep.number) })
			rd.local, rd.localPolls = p.Took, len(p.Times)
		}()
		var perr error
		p := measure.PollUntil(rctx, o.poll, dep.t0, func() bool { return b.adminApplied(rctx, dep.number) })
		rd.admin, rd.adminPolls = p.Took, len(p.Times)
		pollTimes = append(pollTimes, p.Times...)
		<-localDone
		if rctx.Err() != nil {
			rd.timedOut = true
			perr = rctx.Err()
		}
		cancel()
		if perr != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		rounds = append(rounds, rd)
		if o.verbose {
			fmt.Printf("  round %2d: #%d  admin %7.1f ms  node %7.1f ms  (POST %5.1f ms, %d polls)%s\n", r, rd.number,
				measure.MS(rd.admin), measure.MS(rd.local), measure.MS(rd.post), rd.adminPolls, map[bool]string{true: "  TIMED OUT", false: ""}[rd.timedOut])
		}
	}
	cpu1, wall := b.cpu(), time.Since(began)
	b.readNodeLog(rounds, t0s)
	report(o, rounds, pollTimes)
	fmt.Printf("  CPU per deployment (over the %d rounds, %.1f s with the draft changes and pauses, less the idle rate of each process):\n",
		len(rounds), wall.Seconds())
	var total time.Duration
	for _, who := range []string{"admin node", "node manager", "gateways (sum)", "this program (pollers)"} {
		idle := time.Duration(float64(idle1[who]-idle0[who]) * wall.Seconds() / idleWall.Seconds())
		d := cpu1[who] - cpu0[who] - idle
		total += d
		fmt.Printf("    %-24s %7.1f ms   (idle: %.1f%% of a core)\n", who, measure.MS(d)/float64(len(rounds)),
			100*float64(idle1[who]-idle0[who])/float64(idleWall))
	}
	fmt.Printf("    %-24s %7.1f ms   (%d CPUs; load average now %s)\n", "total", measure.MS(total)/float64(len(rounds)), runtime.NumCPU(), measure.LoadAvg())
	return nil
}

// cpu returns the CPU time (user + system) used so far by each party.
func (b *bench) cpu() map[string]time.Duration {
	out := map[string]time.Duration{
		"admin node":             measure.ProcCPU(b.d.Admin().Pid()),
		"node manager":           measure.ProcCPU(b.host.Node.Pid()),
		"this program (pollers)": measure.SelfCPU(),
	}
	for _, pid := range b.d.GatewayPIDs() {
		out["gateways (sum)"] += measure.ProcCPU(pid)
	}
	return out
}

func (b *bench) adminApplied(ctx context.Context, number uint64) bool {
	ins, err := b.d.API.GroupInstances(ctx, group)
	if err != nil || len(ins) != b.o.instances {
		return false
	}
	for _, in := range ins {
		if in.Observed == nil || in.Observed.AppliedDeployment != number {
			return false
		}
	}
	return true
}

func (b *bench) localApplied(ctx context.Context, number uint64) bool {
	ins, err := b.host.Instances(ctx, b.localHC)
	if err != nil || len(ins) != b.o.instances {
		return false
	}
	for _, in := range ins {
		if in.AppliedDeployment != number {
			return false
		}
	}
	return true
}

// readNodeLog finds, in the node manager's JSON log, when each deployment
// was received and when the last gateway reported it applied.
func (b *bench) readNodeLog(rounds []round, t0s map[uint64]time.Time) {
	f, err := os.Open(b.host.Node.Log)
	if err != nil {
		return
	}
	defer f.Close()
	received := map[uint64]time.Time{}
	reported := map[uint64]time.Time{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg     string  `json:"@message"`
			At      string  `json:"@timestamp"`
			Number  float64 `json:"number"`
			Applied float64 `json:"applied"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, l.At)
		if err != nil {
			continue
		}
		switch l.Msg {
		case "deployment received":
			n := uint64(l.Number)
			if _, ok := received[n]; !ok {
				received[n] = at
			}
		case "instance reports":
			n := uint64(l.Applied)
			if at.After(reported[n]) {
				reported[n] = at
			}
		}
	}
	applied := b.gatewaysApplied()
	for i := range rounds {
		n := rounds[i].number
		if at, ok := applied[n]; ok {
			rounds[i].applied = at.Sub(t0s[n])
		}
		if at, ok := received[n]; ok {
			rounds[i].received = at.Sub(t0s[n])
		}
		if at, ok := reported[n]; ok {
			rounds[i].reported = at.Sub(t0s[n])
		}
	}
}

// gatewaysApplied reads, in every gateway's log, when it applied each
// deployment, and returns the last time for each number.
func (b *bench) gatewaysApplied() map[uint64]time.Time {
	last := map[uint64]time.Time{}
	logs, _ := filepath.Glob(b.host.GatewayLog("*"))
	for _, path := range logs {
		localdomain.ScanGatewayLog(path, "deployment applied: number=", func(at time.Time, rest string) bool {
			_, num, _ := strings.Cut(rest, "number=")
			num, _, _ = strings.Cut(num, " ")
			var n uint64
			if _, err := fmt.Sscan(num, &n); err == nil && at.After(last[n]) {
				last[n] = at
			}
			return true
		})
	}
	return last
}

func report(o options, rounds []round, pollTimes []time.Duration) {
	pick := func(f func(round) time.Duration) []time.Duration {
		var out []time.Duration
		for _, r := range rounds {
			if !r.timedOut {
				out = append(out, f(r))
			}
		}
		return out
	}
	timedOut := 0
	for _, r := range rounds {
		if r.timedOut {
			timedOut++
		}
	}
	fmt.Println()
	fmt.Printf("Propagation: %d instances on one host, gossip on, %d deployments, node run --heartbeat %s\n", o.instances, len(rounds), o.heartbeat)
	fmt.Printf("  polling: GET every %s after the previous answer (an admin poll itself takes p50 %.2f ms, p99 %.2f ms)\n",
		o.poll, measure.MS(measure.Percentile(pollTimes, 50)), measure.MS(measure.Percentile(pollTimes, 99)))
	fmt.Printf("  %-44s %8s %8s %8s %8s\n", "ms from POST /deployments to ...", "p50", "p90", "p99", "max")
	row := func(name string, ds []time.Duration) {
		if len(ds) == 0 {
			fmt.Printf("  %-44s %8s\n", name, "-")
			return
		}
		fmt.Printf("  %-44s %8.1f %8.1f %8.1f %8.1f\n", name, measure.MS(measure.Percentile(ds, 50)), measure.MS(measure.Percentile(ds, 90)), measure.MS(measure.Percentile(ds, 99)), measure.MS(measure.Percentile(ds, 100)))
	}
	row("POST answered (deployment signed, stored)", pick(func(r round) time.Duration { return r.post }))
	row("node manager received it (its log)", nonZero(pick(func(r round) time.Duration { return r.received })))
	row("last gateway applied it (gateway logs, 1 ms)", nonZero(pick(func(r round) time.Duration { return r.applied })))
	row("node manager had the last report (its log)", nonZero(pick(func(r round) time.Duration { return r.reported })))
	if o.local {
		row("node manager GET /v1/instances: all applied", pick(func(r round) time.Duration { return r.local }))
	}
	row("admin GET /groups/{g}/instances: all applied", pick(func(r round) time.Duration { return r.admin }))
	admin := pick(func(r round) time.Duration { return r.admin })
	verdict := "NOT met"
	if len(admin) > 0 && measure.Percentile(admin, 99) <= 100*time.Millisecond && timedOut == 0 {
		verdict = "met"
	}
	fmt.Printf("  propagation p50 %.1f ms, p99 %.1f ms (target p99 <= 100 ms: %s)\n", measure.MS(measure.Percentile(admin, 50)), measure.MS(measure.Percentile(admin, 99)), verdict)
	if timedOut > 0 {
		fmt.Printf("  WARNING: %d round(s) timed out after %s and are left out of the figures\n", timedOut, o.timeout)
	}
	if len(admin) < 100 {
		fmt.Printf("  (with %d rounds, p99 is the largest but %d: run more rounds for a steadier tail)\n", len(admin), len(admin)-int(math.Ceil(0.99*float64(len(admin)))))
	}
}

func nonZero(ds []time.Duration) []time.Duration {
	return slices.DeleteFunc(ds, func(d time.Duration) bool { return d == 0 })
}
