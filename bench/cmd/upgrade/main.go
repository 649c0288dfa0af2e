// Command upgrade measures a rolling upgrade of a group of gateway
// instances on one host under load: the real admin node, one real node
// manager and its gateways, all on this machine. See bench/README.md.
//
// It builds two gatehouse binaries from this repository with different
// version strings (A and B), uploads both as releases, moves the group to
// A (not measured), then loads every instance (half the clients on
// keep-alive connections, half on a new connection per request) for a
// baseline, and moves the group from A to B under the same load: the
// rollout's total time, the requests that failed, and the p50/p99
// latency during the rollout against the baseline.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
)

const (
	domain = "bench"
	group  = "upgrade"
	host   = "bench-host"
)

type options struct {
	bin            string
	instances      int
	clients        int
	baseline       time.Duration
	soak           time.Duration
	maxUnavailable int
	timeout        time.Duration
	keep           bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gatehouse", "the gatehouse binary of the admin node and node manager")
	flag.IntVar(&o.instances, "instances", 10, "gateway instances of the group on the host")
	flag.IntVar(&o.clients, "clients", 20, "concurrent clients, spread over the instances")
	flag.DurationVar(&o.baseline, "baseline", 15*time.Second, "load before the rollout, for the baseline latency")
	flag.DurationVar(&o.soak, "soak", 2*time.Second, "admin run --rollout-soak")
	flag.IntVar(&o.maxUnavailable, "max-unavailable", 1, "instances replaced at once")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a rollout after this long")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, data dirs)")
	flag.Parse()
	if o.instances < 1 || o.clients < 2 || o.maxUnavailable < 1 {
		fatalf("-instances and -max-unavailable must be positive, -clients at least 2")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "upgrade: error:", err)
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "upgrade: "+format+"\n", args...)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "upgrade: "+format+"\n", args...)
}

func run(ctx context.Context, o options) (err error) {
	d, err := localdomain.New(o.bin, "upgrade", logf)
	if err != nil {
		return err
	}
	defer func() { d.Close(o.keep || err != nil) }()
	d.RunAdmin = func(dir, listen string) *exec.Cmd {
		return exec.Command(d.Bin, "admin", "run", "--data-dir", dir, "--listen", listen, "--rollout-soak", o.soak.String())
	}
	releases := map[string]string{}
	for _, v := range []string{"bench-a", "bench-b"} {
		p := filepath.Join(d.Work, "gatehouse-"+v)
		logf("go build -ldflags '-X main.version=%s'", v)
		build := exec.CommandContext(ctx, "go", "build", "-ldflags", "-X main.version="+v, "-o", p, "github.com/gatehouse/gatehouse/cmd/gatehouse")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build release %s: %w\n%s", v, err, out)
		}
		releases[v] = p
	}
	upstream, err := startUpstream()
	if err != nil {
		return err
	}
	defer upstream.Close()

	if err := d.StartAdmin(ctx, domain); err != nil {
		return err
	}
	api := d.API
	if _, err := api.CreateGroup(ctx, apitypes.Group{Name: group}); err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	h, err := d.JoinHost(ctx, host)
	if err != nil {
		return err
	}
	var addrs []string
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
		if _, err := api.CreateInstance(ctx, in); err != nil {
			return fmt.Errorf("create instance %s: %w", in.Name, err)
		}
		addrs = append(addrs, listen)
	}
	cfg := fmt.Appendf(nil, "upstreams:\n  - name: backend\n    targets:\n      - address: %s\nservices:\n  - name: api\n    upstream: backend\n    routes:\n      - name: all\n        paths: [\"/*\"]\n", upstream.Addr())
	if _, err := api.PutDraft(ctx, group, cfg, "application/yaml", 0); err != nil {
		return fmt.Errorf("put draft: %w", err)
	}
	if _, err := api.Deploy(ctx, group, apitypes.DeployRequest{Message: "upgrade benchmark"}); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if err := d.StartNode(h, time.Second); err != nil {
		return err
	}
	for v, p := range releases {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := api.UploadRelease(ctx, v, data); err != nil {
			return fmt.Errorf("upload release %s: %w", v, err)
		}
	}
	if err := h.Node.WaitUntil(ctx, 2*time.Minute, "every instance Healthy", func() bool {
		ins, err := api.GroupInstances(ctx, group)
		if err != nil || len(ins) != o.instances {
			return false
		}
		for _, in := range ins {
			if in.Status != "Healthy" {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	logf("moving the group to release bench-a (not measured)")
	if _, _, err := rollout(ctx, api, "bench-a", o); err != nil {
		return err
	}

	l := &load{}
	lctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range o.clients {
		wg.Go(func() { l.run(lctx, addrs, i) })
	}
	logf("baseline: %d clients for %s", o.clients, o.baseline)
	b0 := time.Now()
	time.Sleep(o.baseline)
	b1 := time.Now()
	failsBefore := l.failed.Load()
	logf("rolling upgrade bench-a → bench-b, %d at a time", o.maxUnavailable)
	took, state, err := rollout(ctx, api, "bench-b", o)
	r1 := time.Now()
	time.Sleep(time.Second)
	stopLoad()
	wg.Wait()
	if err != nil {
		return err
	}
	base := l.lat.Between(b0, b1)
	during := l.lat.Between(b1, r1)
	p99b, p99d := measure.Percentile(base, 99), measure.Percentile(during, 99)
	fmt.Printf("rolling upgrade of %d instances on one host (%d at a time, soak %s), %d clients (half keep-alive):\n", o.instances, o.maxUnavailable, o.soak, o.clients)
	fmt.Printf("  rollout: %s in %.1f s\n", state, took.Seconds())
	fmt.Printf("  requests: %d before (%.0f/s), %d during (%.0f/s); failed: %d before, %d during\n",
		len(base), float64(len(base))/b1.Sub(b0).Seconds(), len(during), float64(len(during))/r1.Sub(b1).Seconds(),
		failsBefore, l.failed.Load()-failsBefore)
	fmt.Printf("  latency before: p50 %.2f ms, p99 %.2f ms\n", measure.MS(measure.Percentile(base, 50)), measure.MS(p99b))
	fmt.Printf("  latency during: p50 %.2f ms, p99 %.2f ms (p99 %.2fx the baseline)\n", measure.MS(measure.Percentile(during, 50)), measure.MS(p99d), float64(p99d)/float64(max(p99b, 1)))
	l.mu.Lock()
	for i, e := range l.errs {
		if i == 5 {
			break
		}
		fmt.Printf("  failure: %s\n", e)
	}
	l.mu.Unlock()
	fmt.Printf("  %s\n", measure.LoadAvg())
	if state != "done" {
		return fmt.Errorf("the rollout ended %s", state)
	}
	return nil
}

// rollout moves the group to release v and waits for the end.
func rollout(ctx context.Context, api interface {
	SetGroupGateway(context.Context, string, apitypes.GroupGatewayUpdate) (apitypes.GroupGateway, error)
	GroupGateway(context.Context, string) (apitypes.GroupGateway, error)
}, v string, o options) (time.Duration, string, error) {
	t0 := time.Now()
	gw, err := api.SetGroupGateway(ctx, group, apitypes.GroupGatewayUpdate{Version: v, MaxUnavailable: o.maxUnavailable})
	if err != nil {
		return 0, "", fmt.Errorf("set release %s: %w", v, err)
	}
	id := gw.Rollout.ID
	deadline := time.Now().Add(o.timeout)
	for time.Now().Before(deadline) {
		gw, err := api.GroupGateway(ctx, group)
		if err == nil && gw.Rollout != nil && gw.Rollout.ID == id {
			switch gw.Rollout.State {
			case "done":
				return time.Since(t0), "done", nil
			case "rolled-back":
				return time.Since(t0), "rolled-back (" + gw.Rollout.Error + ")", nil
			}
		}
		if ctx.Err() != nil {
			return 0, "", ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, "", fmt.Errorf("rollout to %s not over after %s", v, o.timeout)
}

// load is the clients: every request's latency by its start, and the
// failures.
type load struct {
	lat    measure.Latencies
	failed atomic.Int64
	mu     sync.Mutex
	errs   []string
}

func (l *load) run(ctx context.Context, addrs []string, i int) {
	tr := &http.Transport{DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for n := 0; ctx.Err() == nil; n++ {
		url := fmt.Sprintf("http://%s/load/%d/%d", addrs[(i+n)%len(addrs)], i, n)
		t0 := time.Now()
		err := get(c, url)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.failed.Add(1)
			l.mu.Lock()
			l.errs = append(l.errs, err.Error())
			l.mu.Unlock()
			continue
		}
		l.lat.Add(t0, time.Since(t0))
	}
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "ok") {
		return fmt.Errorf("GET %s: %d %q", url, resp.StatusCode, body)
	}
	return nil
}

// upstream answers "ok" to everything.
type upstream struct {
	ln  net.Listener
	srv *http.Server
}

func startUpstream() (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{ln: ln, srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})}}
	go u.srv.Serve(ln)
	return u, nil
}

func (u *upstream) Addr() string { return u.ln.Addr().String() }
func (u *upstream) Close()       { u.srv.Close() }
