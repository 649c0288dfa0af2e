// Command failover measures a domain in PostgreSQL with two admin nodes,
// A and B, losing one: a real PostgreSQL (internal/pgtest, durable), the
// real admin nodes (gatehouse admin init --store-file on A, admin keys
// export, admin init --join on B), and real node managers (gatehouse node
// join, node run --addr B,A) each with a gateway of one group, all on this
// machine. See bench/README.md.
//
// First, deployments through A while every node manager watches B: the
// time from POST /deployments on A until B shows every gateway running
// it (the roll-out complete). Then rounds of SIGKILL of the admin node
// the node managers are attached to: the time until every one of them is
// attached to the other, which is then started again, so that the rounds
// alternate between A and B.
package main

import (
	"context"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
)

const (
	domain = "bench"
	group  = "fo"
)

type options struct {
	bin          string
	nodes        int
	rounds       int
	deploys      int
	heartbeat    time.Duration
	poll         time.Duration
	overviewPoll time.Duration
	timeout      time.Duration
	stop         bool
	keep         bool
	verbose      bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gatehouse", "the gatehouse binary to run")
	flag.IntVar(&o.nodes, "nodes", 4, "node managers (gatehouse node run), one host and one gateway each")
	flag.IntVar(&o.rounds, "rounds", 20, "kills of the admin node the node managers are attached to")
	flag.IntVar(&o.deploys, "deploys", 30, "deployments through A timed until B shows them applied (0: none)")
	flag.DurationVar(&o.heartbeat, "heartbeat", 5*time.Second, "node run --heartbeat")
	flag.DurationVar(&o.poll, "poll", 5*time.Millisecond, "pause between two polls of an instance list or of the node managers' sockets")
	flag.DurationVar(&o.overviewPoll, "overview-poll", 50*time.Millisecond, "pause between two polls of the surviving admin node's GET /overview")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up on a round or a deployment after this long")
	flag.BoolVar(&o.stop, "stop", false, "SIGSTOP the admin node instead of SIGKILL (an admin node that hangs with its connections open, as a host lost or cut off), SIGKILL it after the round")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, data dirs, PostgreSQL's log)")
	flag.BoolVar(&o.verbose, "v", false, "print every round and deployment")
	flag.Parse()
	if o.nodes < 1 || o.rounds < 0 || o.deploys < 0 || o.poll < 0 || o.overviewPoll <= 0 || o.heartbeat <= 0 {
		fmt.Fprintln(os.Stderr, "failover: -nodes must be positive, -rounds and -deploys not negative, the periods positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "failover: error:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "failover: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// bench is one run: the domain, its two admin nodes and its hosts.
type bench struct {
	o      options
	d      *localdomain.Domain
	admins [2]*localdomain.AdminNode
	hosts  []*localdomain.Host
	load   []string
}

func run(ctx context.Context, o options) (err error) {
	d, err := localdomain.New(o.bin, "failover", logf)
	if err != nil {
		return err
	}
	defer func() { d.Close(o.keep || err != nil) }()
	b := &bench{o: o, d: d}
	if err := b.setUp(ctx); err != nil {
		return err
	}
	b.load = append(b.load, measure.LoadAvg())
	fmt.Println()
	fmt.Printf("Failover: a domain in PostgreSQL, admin nodes A (%s) and B (%s), %d node managers with a gateway each (node run --addr B,A --heartbeat %s)\n",
		b.admins[0].Addr, b.admins[1].Addr, o.nodes, o.heartbeat)
	fmt.Printf("  load average %s at the start (%d CPUs)\n", b.load[0], runtime.NumCPU())
	if o.deploys > 0 {
		ds, err := b.deployments(ctx)
		if err != nil {
			return err
		}
		b.load = append(b.load, measure.LoadAvg())
		reportDeploys(o, ds, b.load[len(b.load)-1])
	}
	if o.rounds > 0 {
		rs, err := b.kills(ctx)
		if err != nil {
			return err
		}
		b.load = append(b.load, measure.LoadAvg())
		reportKills(o, rs, b.load[len(b.load)-1])
	}
	return nil
}

// setUp makes the domain in PostgreSQL with its two admin nodes, the
// group, a host with one instance for each node manager and a first
// deployment, starts the node managers with B first in their list and
// waits until every instance is Healthy and every node manager connected
// to B.
func (b *bench) setUp(ctx context.Context) error {
	o := b.o
	if _, err := b.d.StartPostgres(ctx); err != nil {
		return err
	}
	if err := b.d.StartAdmin(ctx, domain); err != nil {
		return err
	}
	bNode, err := b.d.AddAdmin(ctx)
	if err != nil {
		return err
	}
	b.admins = [2]*localdomain.AdminNode{b.d.Admins()[0], bNode}
	a := b.admins[0].API
	if _, err := a.CreateGroup(ctx, apitypes.Group{Name: group, Description: "failover benchmark"}); err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	for i := 1; i <= o.nodes; i++ {
		name := fmt.Sprintf("fo-host-%02d", i)
		h, err := b.d.JoinHost(ctx, name)
		if err != nil {
			return err
		}
		b.hosts = append(b.hosts, h)
		listen, err := measure.FreeAddr()
		if err != nil {
			return err
		}
		status, err := measure.FreeAddr()
		if err != nil {
			return err
		}
		in := apitypes.Instance{Name: fmt.Sprintf("%s-%02d", group, i), Group: group, Host: name, Listen: listen, StatusListen: status}
		if _, err := a.CreateInstance(ctx, in); err != nil {
			return fmt.Errorf("create instance %s: %w", in.Name, err)
		}
	}
	first, err := b.deploy(ctx, 0)
	if err != nil {
		return err
	}
	logf("node run --addr B,A --heartbeat %s (%d node managers)", o.heartbeat, o.nodes)
	for _, h := range b.hosts {
		if err := b.d.StartNode(h, o.heartbeat, b.admins[1].URL, b.admins[0].URL); err != nil {
			return err
		}
	}
	return b.hosts[0].Node.WaitUntil(ctx, 2*time.Minute, "every instance Healthy on the first deployment, every node manager connected to B", func() bool {
		return b.allApplied(ctx, 1, first.number) && len(b.connected(b.admins[1])) == o.nodes
	})
}

// draft is the group's configuration for deployment r: one route whose
// path names it, so that every deployment is a real change.
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
        paths: ["/deploy-%d/*"]
`, r)
}

type deployed struct {
	number uint64
	t0     time.Time
	post   time.Duration
}

// deploy changes the draft through A, lets the change's own wake-up of
// the node managers settle, then deploys through A and returns when the
// POST was answered; t0 is when it was sent.
func (b *bench) deploy(ctx context.Context, r int) (deployed, error) {
	a := b.admins[0].API
	d, err := a.GetDraft(ctx, group)
	if err != nil {
		return deployed{}, fmt.Errorf("get draft: %w", err)
	}
	if _, err := a.PutDraft(ctx, group, draft(r), "application/yaml", d.Version); err != nil {
		return deployed{}, fmt.Errorf("put draft: %w", err)
	}
	// Any change wakes the node managers' watch of their instances, on B
	// too: let that pass, and do not start in step with the heartbeats.
	if r > 0 {
		time.Sleep(200*time.Millisecond + mrand.N(300*time.Millisecond))
	}
	t0 := time.Now()
	dep, err := a.Deploy(ctx, group, apitypes.DeployRequest{Message: fmt.Sprintf("failover benchmark %d", r)})
	if err != nil {
		return deployed{}, fmt.Errorf("deploy through A: %w", err)
	}
	return deployed{number: dep.Number, t0: t0, post: time.Since(t0)}, nil
}

// allApplied says whether admin node i shows every instance of the group
// running deployment number.
func (b *bench) allApplied(ctx context.Context, i int, number uint64) bool {
	ins, err := b.admins[i].API.GroupInstances(ctx, group)
	if err != nil || len(ins) != b.o.nodes {
		return false
	}
	for _, in := range ins {
		if in.Observed == nil || in.Observed.AppliedDeployment != number {
			return false
		}
	}
	return true
}

// connected returns the hosts whose node manager holds a TCP connection
// to admin node a.
func (b *bench) connected(a *localdomain.AdminNode) []string {
	var out []string
	for _, h := range b.hosts {
		if h.Node == nil {
			continue
		}
		if ok, _ := measure.ConnectedTo(h.Node.Pid(), a.Addr); ok {
			out = append(out, h.Name)
		}
	}
	return out
}

func adminName(i int) string { return string(rune('A' + i)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// row prints p50, p90, p99 and max of ds in ms.
func row(name string, ds []time.Duration) {
	if len(ds) == 0 {
		fmt.Printf("  %-62s %8s\n", name, "-")
		return
	}
	fmt.Printf("  %-62s %8.1f %8.1f %8.1f %8.1f\n", name, measure.MS(measure.Percentile(ds, 50)), measure.MS(measure.Percentile(ds, 90)),
		measure.MS(measure.Percentile(ds, 99)), measure.MS(measure.Percentile(ds, 100)))
}

func header(what string) {
	fmt.Printf("  %-62s %8s %8s %8s %8s\n", what, "p50", "p90", "p99", "max")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
