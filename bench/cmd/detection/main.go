// Command detection measures how long a group takes to notice that one of
// its gateways died: the real admin node, two real node managers standing
// for two hosts, and the gateways they start, all on this machine. See
// bench/README.md and docs/gossip.md.
//
// The victim is alone on the second host. A gateway killed under a running
// node manager is started again within about 100 ms, before its peers can
// declare it dead, so each trial first kills the victim's node manager
// (SIGKILL: the host is lost), then the victim (SIGKILL, t0), and times
// until (a) every surviving peer's /status lists it dead and (b) GET
// /api/v1/groups/{g}/instances shows it unreachable. It then starts the
// node manager again, which starts the victim again, and waits until the
// group is whole and the mark cleared before the next trial.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
	"github.com/gatehouse/gatehouse/gateway/gossip"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

const (
	domain = "bench"
	group  = "det"
	// Survivors run on hostA, the victim alone on hostB.
	hostA = "det-a"
	hostB = "det-b"
)

type options struct {
	bin       string
	members   int
	trials    int
	poll      time.Duration
	heartbeat time.Duration
	timeout   time.Duration
	keep      bool
	verbose   bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gatehouse", "the gatehouse binary to run")
	flag.IntVar(&o.members, "members", 3, "gateway instances in the group (the victim and the survivors)")
	flag.IntVar(&o.trials, "trials", 10, "kills measured")
	flag.DurationVar(&o.poll, "poll", 10*time.Millisecond, "pause between two polls of a /status or of the admin node")
	flag.DurationVar(&o.heartbeat, "heartbeat", 5*time.Second, "node run --heartbeat (a changed gossip view is sent at once anyway)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up on a trial after this long")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, data dirs)")
	flag.BoolVar(&o.verbose, "v", false, "print every trial")
	flag.Parse()
	if o.members < 2 || o.trials < 1 || o.poll < 0 {
		fatalf("-members must be at least 2, -trials positive, -poll not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "detection: error:", err)
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "detection: "+format+"\n", args...)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "detection: "+format+"\n", args...)
}

// bench is one run: the domain, its hosts and the group's instances.
type bench struct {
	o         options
	d         *localdomain.Domain
	hosts     map[string]*localdomain.Host
	survivors []string
	victim    string
	// status is each instance's status address.
	status map[string]string
	hc     *http.Client
}

func run(ctx context.Context, o options) (err error) {
	d, err := localdomain.New(o.bin, "detection", logf)
	if err != nil {
		return err
	}
	defer func() { d.Close(o.keep || err != nil) }()
	b := &bench{o: o, d: d, hosts: map[string]*localdomain.Host{}, status: map[string]string{},
		hc: &http.Client{Timeout: 5 * time.Second}}
	if err := b.setUp(ctx); err != nil {
		return err
	}
	return b.measure(ctx)
}

// setUp makes the domain, the two hosts, the group, its instances and a
// first deployment, starts both node managers and waits until the group
// is whole.
func (b *bench) setUp(ctx context.Context) error {
	o := b.o
	if err := b.d.StartAdmin(ctx, domain); err != nil {
		return err
	}
	if _, err := b.d.API.CreateGroup(ctx, apitypes.Group{Name: group, Description: "detection benchmark"}); err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	for _, name := range []string{hostA, hostB} {
		h, err := b.d.JoinHost(ctx, name)
		if err != nil {
			return err
		}
		b.hosts[name] = h
	}
	var err error
	for i := 1; i <= o.members; i++ {
		in := apitypes.Instance{Name: fmt.Sprintf("%s-%d", group, i), Group: group, Host: hostA}
		if i == o.members {
			in.Host = hostB
			b.victim = in.Name
		} else {
			b.survivors = append(b.survivors, in.Name)
		}
		if in.Listen, err = measure.FreeAddr(); err != nil {
			return err
		}
		if in.StatusListen, err = measure.FreeAddr(); err != nil {
			return err
		}
		if in.GossipListen, err = freeGossipAddr(); err != nil {
			return err
		}
		if _, err := b.d.API.CreateInstance(ctx, in); err != nil {
			return fmt.Errorf("create instance %s: %w", in.Name, err)
		}
		b.status[in.Name] = in.StatusListen
	}
	d, err := b.d.API.GetDraft(ctx, group)
	if err != nil {
		return fmt.Errorf("get draft: %w", err)
	}
	if _, err := b.d.API.PutDraft(ctx, group, []byte(draft), "application/yaml", d.Version); err != nil {
		return fmt.Errorf("put draft: %w", err)
	}
	if _, err := b.d.API.Deploy(ctx, group, apitypes.DeployRequest{Message: "detection"}); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	logf("node run --heartbeat %s on %s (%d instances) and %s (1)", o.heartbeat, hostA, o.members-1, hostB)
	for _, name := range []string{hostA, hostB} {
		if err := b.d.StartNode(b.hosts[name], o.heartbeat); err != nil {
			return err
		}
	}
	return b.waitWhole(ctx, 90*time.Second)
}

// draft routes everything to a port nobody listens on: the benchmark
// sends no traffic.
const draft = `upstreams:
  - name: backend
    targets:
      - address: 127.0.0.1:9
services:
  - name: api
    upstream: backend
    routes:
      - name: all
        paths: ["/*"]
`

// freeGossipAddr is a loopback address whose port is free for TCP and
// UDP: memberlist binds both.
func freeGossipAddr() (string, error) {
	for range 20 {
		addr, err := measure.FreeAddr()
		if err != nil {
			return "", err
		}
		if u, err := net.ListenPacket("udp", addr); err == nil {
			u.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no loopback port free for both TCP and UDP")
}

// waitWhole waits until every instance lists every other alive in its
// /status and the admin node shows them all Healthy, none unreachable,
// each with a view of its peers all alive.
func (b *bench) waitWhole(ctx context.Context, d time.Duration) error {
	return b.hosts[hostA].Node.WaitUntil(ctx, d, "the group whole: every peer alive everywhere, none unreachable", func() bool {
		for name, addr := range b.status {
			ps, err := b.peers(ctx, addr)
			if err != nil || len(ps) != b.o.members-1 {
				return false
			}
			for _, p := range ps {
				if p.State != gossip.StateAlive || p.Name == name {
					return false
				}
			}
		}
		ins, err := b.d.API.GroupInstances(ctx, group)
		if err != nil || len(ins) != b.o.members {
			return false
		}
		for _, in := range ins {
			if in.Status != "Healthy" || in.Unreachable || in.Observed == nil || len(in.Observed.Peers) != b.o.members-1 {
				return false
			}
			for _, p := range in.Observed.Peers {
				if p.State != gossip.StateAlive {
					return false
				}
			}
		}
		return true
	})
}

// peers reads the gossip peers in a gateway's /status.
func (b *bench) peers(ctx context.Context, status string) ([]gossip.Peer, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+status+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Gossip *struct {
			Peers []gossip.Peer `json:"peers"`
		} `json:"gossip"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Gossip == nil {
		return nil, fmt.Errorf("%s: no gossip in /status", status)
	}
	return r.Gossip.Peers, nil
}

// trial is what one kill took, each from t0, the SIGKILL of the victim.
type trial struct {
	// firstPeer and allPeers: the first and the last survivor's /status
	// listing the victim dead.
	firstPeer, allPeers time.Duration
	// logFirst and logLast: the same from the survivors' logs ("peer
	// failed", to the millisecond), free of polling; zero when not found.
	logFirst, logLast time.Duration
	// admin: GET /groups/{g}/instances shows the victim unreachable;
	// adminAll: unreachable by every survivor.
	admin, adminAll time.Duration
	// back: the victim's node manager started again → the group whole and
	// the mark cleared.
	back     time.Duration
	timedOut bool
}

func (b *bench) measure(ctx context.Context) error {
	o := b.o
	logf("measuring %d kills (poll every %s)", o.trials, o.poll)
	var trials []trial
	for i := 1; i <= o.trials; i++ {
		// Out of step with the probe rounds and the heartbeat ticker.
		time.Sleep(500*time.Millisecond + mrand.N(time.Second))
		tr, err := b.trial(ctx)
		if err != nil {
			return fmt.Errorf("trial %d: %w", i, err)
		}
		trials = append(trials, tr)
		if o.verbose {
			fmt.Printf("  kill %2d: peers %6.0f / %6.0f ms (logs %6.0f / %6.0f)  admin %6.0f / %6.0f ms  back in %6.0f ms%s\n", i,
				measure.MS(tr.firstPeer), measure.MS(tr.allPeers), measure.MS(tr.logFirst), measure.MS(tr.logLast),
				measure.MS(tr.admin), measure.MS(tr.adminAll), measure.MS(tr.back), map[bool]string{true: "  TIMED OUT", false: ""}[tr.timedOut])
		}
	}
	report(o, trials)
	return nil
}

func (b *bench) trial(ctx context.Context) (trial, error) {
	var tr trial
	hb := b.hosts[hostB]
	pid, err := b.victimPID(ctx, hb)
	if err != nil {
		return tr, err
	}
	// The host is lost: its node manager first, so that nobody starts
	// the victim again.
	hb.Node.Kill()
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return tr, fmt.Errorf("kill the victim %d: %w", pid, err)
	}
	tctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()

	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, s := range b.survivors {
		wg.Go(func() {
			p := measure.PollUntil(tctx, b.o.poll, t0, func() bool {
				ps, err := b.peers(tctx, b.status[s])
				return err == nil && slices.ContainsFunc(ps, func(p gossip.Peer) bool { return p.Name == b.victim && p.State == gossip.StateDead })
			})
			mu.Lock()
			defer mu.Unlock()
			tr.timedOut = tr.timedOut || !p.OK
			if tr.firstPeer == 0 || p.Took < tr.firstPeer {
				tr.firstPeer = p.Took
			}
			tr.allPeers = max(tr.allPeers, p.Took)
		})
	}
	shown := measure.PollUntil(tctx, b.o.poll, t0, func() bool {
		ins, err := b.d.API.GroupInstances(tctx, group)
		if err != nil {
			return false
		}
		for _, in := range ins {
			if in.Name == b.victim && in.Unreachable {
				if tr.admin == 0 {
					tr.admin = time.Since(t0)
				}
				return len(in.UnreachableBy) == len(b.survivors)
			}
		}
		return false
	})
	wg.Wait()
	tr.adminAll = shown.Took
	tr.timedOut = tr.timedOut || !shown.OK
	tr.logFirst, tr.logLast = b.failedInLogs(t0)

	restarted := time.Now()
	if err := b.d.StartNode(hb, b.o.heartbeat); err != nil {
		return tr, err
	}
	if err := b.waitWhole(ctx, b.o.timeout); err != nil {
		return tr, err
	}
	tr.back = time.Since(restarted)
	return tr, nil
}

// victimPID asks the victim's node manager for its pid.
func (b *bench) victimPID(ctx context.Context, h *localdomain.Host) (int, error) {
	ins, err := h.Instances(ctx, b.hc)
	if err != nil {
		return 0, err
	}
	for _, in := range ins {
		if in.Name == b.victim && in.PID > 0 && in.Process == localapi.ProcessRunning {
			return in.PID, nil
		}
	}
	return 0, fmt.Errorf("%s's node manager shows no running %s: %+v", h.Name, b.victim, ins)
}

// failedInLogs reads, in the survivors' logs, when each declared the
// victim failed after t0, and returns the first and the last, from t0.
func (b *bench) failedInLogs(t0 time.Time) (first, last time.Duration) {
	// The stamps have milliseconds: a line of the same millisecond as t0
	// counts.
	since := t0.Truncate(time.Millisecond)
	for _, s := range b.survivors {
		at := b.failedAt(s, since)
		if at.IsZero() {
			return 0, 0
		}
		d := max(at.Sub(t0), 0)
		if first == 0 || d < first {
			first = d
		}
		last = max(last, d)
	}
	return first, last
}

// failedAt is when instance's log first says the victim failed at or
// after since.
func (b *bench) failedAt(instance string, since time.Time) time.Time {
	var failed time.Time
	localdomain.ScanGatewayLog(b.hosts[hostA].GatewayLog(instance), "peer failed: peer="+b.victim+" ", func(at time.Time, _ string) bool {
		if at.Before(since) {
			return true
		}
		failed = at
		return false
	})
	return failed
}

func report(o options, trials []trial) {
	pick := func(f func(trial) time.Duration) []time.Duration {
		var out []time.Duration
		for _, t := range trials {
			if !t.timedOut && f(t) > 0 {
				out = append(out, f(t))
			}
		}
		return out
	}
	timedOut := 0
	for _, t := range trials {
		if t.timedOut {
			timedOut++
		}
	}
	fmt.Println()
	fmt.Printf("Detection: %d members (%d survivors on one host, the victim alone on another), %d kills, node run --heartbeat %s, %d CPUs\n",
		o.members, o.members-1, len(trials), o.heartbeat, runtime.NumCPU())
	fmt.Printf("  polling: every %s after the previous answer; load average now %s\n", o.poll, measure.LoadAvg())
	fmt.Printf("  %-50s %8s %8s %8s\n", "ms from kill -9 of the victim to ...", "p50", "p90", "max")
	row := func(name string, ds []time.Duration) {
		if len(ds) == 0 {
			fmt.Printf("  %-50s %8s\n", name, "-")
			return
		}
		fmt.Printf("  %-50s %8.0f %8.0f %8.0f\n", name, measure.MS(measure.Percentile(ds, 50)),
			measure.MS(measure.Percentile(ds, 90)), measure.MS(measure.Percentile(ds, 100)))
	}
	row("first survivor's log: peer failed (1 ms stamps)", pick(func(t trial) time.Duration { return t.logFirst }))
	row("last survivor's log: peer failed", pick(func(t trial) time.Duration { return t.logLast }))
	row("first survivor's /status: dead", pick(func(t trial) time.Duration { return t.firstPeer }))
	all := pick(func(t trial) time.Duration { return t.allPeers })
	row("(a) every survivor's /status: dead", all)
	admin := pick(func(t trial) time.Duration { return t.admin })
	row("(b) admin GET /groups/{g}/instances: unreachable", admin)
	row("    ... unreachable by every survivor", pick(func(t trial) time.Duration { return t.adminAll }))
	row("node manager restarted → whole again, mark cleared", pick(func(t trial) time.Duration { return t.back }))
	verdict := func(ds []time.Duration, target time.Duration) string {
		if len(ds) == 0 || timedOut > 0 || measure.Percentile(ds, 100) > target {
			return "NOT met"
		}
		return "met"
	}
	fmt.Printf("  (a) every peer: median %.2f s, max %.2f s (target <= 2 s: %s)\n", measure.Percentile(all, 50).Seconds(),
		measure.Percentile(all, 100).Seconds(), verdict(all, 2*time.Second))
	fmt.Printf("  (b) admin node: median %.2f s, max %.2f s (target <= 3 s: %s)\n", measure.Percentile(admin, 50).Seconds(),
		measure.Percentile(admin, 100).Seconds(), verdict(admin, 3*time.Second))
	if timedOut > 0 {
		fmt.Printf("  WARNING: %d trial(s) timed out after %s and are left out of the figures\n", timedOut, o.timeout)
	}
}
