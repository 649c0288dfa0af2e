// Command consolebench measures the web console (docs/console.md) of a
// real admin node process (gatehouse admin init + admin run) serving a
// domain of -instances instances in -groups groups on -hosts hosts. Each
// host is a simulated node manager, joined with a real CSR and holding its
// own mutual-TLS client, that heartbeats its instances (running, ready,
// the group's deployment applied, the gossip view of its group) as
// `gatehouse node run` does. It measures, over loopback HTTPS:
//
//   - the time to serve the overview, the topology and a group page, and
//     their live parts, signed in (p50, p99, max over -requests each);
//   - what an open page transfers: its HTML, the stylesheet, the script,
//     and the live part it asks for every second;
//   - with a Chromium on PATH, the time from the admin node knowing a
//     status change (the acknowledgement of the heartbeat that reports
//     it) to the open overview showing it, -changes times each way.
//
// See bench/README.md ("Console").
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
	"github.com/gatehouse/gatehouse/internal/pause"
)

type options struct {
	bin       string
	hosts     int
	groups    int
	instances int
	requests  int
	changes   int
	heartbeat time.Duration
	browser   bool
	keep      bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gatehouse", "the gatehouse binary (admin init, admin run)")
	flag.IntVar(&o.hosts, "hosts", 10, "hosts, a simulated node manager each")
	flag.IntVar(&o.groups, "groups", 20, "groups")
	flag.IntVar(&o.instances, "instances", 200, "instances, spread evenly over the groups and, within each group, over the hosts")
	flag.IntVar(&o.requests, "requests", 300, "requests of each page measured, one after the other")
	flag.IntVar(&o.changes, "changes", 10, "status changes watched in the browser, each way")
	flag.DurationVar(&o.heartbeat, "heartbeat", 5*time.Second, "heartbeat interval of every node (node run --heartbeat)")
	flag.BoolVar(&o.browser, "browser", true, "measure the status change in a real Chromium (skipped, said so, when none is on PATH)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (admin data dir and log)")
	flag.Parse()
	if o.hosts < 1 || o.groups < 1 || o.instances < o.groups || o.requests < 1 || o.changes < 1 {
		fmt.Fprintln(os.Stderr, "consolebench: -hosts, -groups, -requests, -changes must be positive and -instances >= -groups")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "consolebench: error:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "consolebench: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

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

// instance is one simulated gateway: what its node manager reports.
type instance struct {
	name, group string
	pid         int
	deployment  apitypes.Deployment
	lastError   string
}

// host is one simulated node manager and its instances.
type host struct {
	name  string
	token string
	c     *client.Client
	mu    sync.Mutex
	ins   []*instance
	peers map[string][]string // group -> its instances
}

// beat sends the host's heartbeat now and returns when the admin node
// acknowledged it: from then on the admin node knows what it says.
func (h *host) beat(ctx context.Context) error {
	h.mu.Lock()
	hb := apitypes.AgentHeartbeat{Version: "bench"}
	for _, in := range h.ins {
		st := apitypes.AgentInstanceState{Name: in.name, Process: "running", PID: in.pid, AppliedDeployment: in.deployment.Number,
			AppliedChecksum: in.deployment.Checksum, Ready: in.lastError == "", LastError: in.lastError}
		for _, p := range h.peers[in.group] {
			if p != in.name {
				st.Peers = append(st.Peers, apitypes.GossipPeer{Name: p, State: "alive", Deployment: in.deployment.Number, Checksum: in.deployment.Checksum})
			}
		}
		hb.Instances = append(hb.Instances, st)
	}
	h.mu.Unlock()
	_, err := h.c.Heartbeat(ctx, hb)
	return err
}

func (h *host) heartbeats(ctx context.Context, every time.Duration) {
	for pause.For(ctx, every) {
		if err := h.beat(ctx); err != nil && ctx.Err() == nil {
			logf("heartbeat of %s: %v", h.name, err)
		}
	}
}

func run(ctx context.Context, o options) error {
	d, err := localdomain.New(o.bin, "console", logf)
	if err != nil {
		return err
	}
	defer d.Close(o.keep)
	if err := d.StartAdmin(ctx, "bench"); err != nil {
		return err
	}
	// The console signs in with a password: a user of the benchmark's own.
	user, password := "bench", measure.RandomHex(16)
	if _, err := d.API.CreateUser(ctx, apitypes.UserCreate{Name: user, Password: password}); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if _, err := d.API.CreateBinding(ctx, apitypes.RoleBinding{User: user, Role: "domain-admin", Scope: apitypes.Scope{Domain: true}}); err != nil {
		return fmt.Errorf("bind user: %w", err)
	}
	hosts, err := declare(ctx, d, o)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		go h.heartbeats(ctx, o.heartbeat)
	}
	logf("waiting for every instance Healthy")
	if err := waitHealthy(ctx, d.API, o.instances); err != nil {
		return err
	}
	con, err := signIn(ctx, d, user, password)
	if err != nil {
		return err
	}
	load := measure.LoadAvg()
	pages, err := servePages(ctx, con, d.AdminURL, o.requests)
	if err != nil {
		return err
	}
	static := map[string]int{}
	for _, p := range []string{"/ui/static/console.css", "/ui/static/console.js"} {
		_, n, _, err := get(ctx, con, d.AdminURL+p, "")
		if err != nil {
			return err
		}
		static[p] = n
	}
	var shown, answered []time.Duration
	if o.browser {
		if shown, answered, err = statusChanges(ctx, d, con, hosts, user, password, o.changes); err != nil {
			return err
		}
	}
	refresh, err := refreshes(ctx, con, d.AdminURL)
	if err != nil {
		return err
	}
	report(o, load, pages, static, refresh, shown, answered)
	return nil
}

// declare makes the groups with a deployment each, the hosts with their
// instances, and joins a simulated node manager for each host.
func declare(ctx context.Context, d *localdomain.Domain, o options) ([]*host, error) {
	logf("declaring %d groups, %d hosts, %d instances", o.groups, o.hosts, o.instances)
	deps := make([]apitypes.Deployment, o.groups)
	for g := range o.groups {
		name := fmt.Sprintf("g%02d", g)
		if _, err := d.API.CreateGroup(ctx, apitypes.Group{Name: name, Labels: map[string]string{"team": fmt.Sprint("t", g%4), "env": "prod"}}); err != nil {
			return nil, fmt.Errorf("create group %s: %w", name, err)
		}
		dr, err := d.API.GetDraft(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("draft of %s: %w", name, err)
		}
		if _, err := d.API.PutDraft(ctx, name, fmt.Appendf(nil, draftYAML, name), "application/yaml", dr.Version); err != nil {
			return nil, fmt.Errorf("put draft of %s: %w", name, err)
		}
		if deps[g], err = d.API.Deploy(ctx, name, apitypes.DeployRequest{Message: "initial"}); err != nil {
			return nil, fmt.Errorf("deploy %s: %w", name, err)
		}
	}
	hosts := make([]*host, o.hosts)
	for i := range hosts {
		h := &host{name: fmt.Sprintf("host-%02d", i), peers: map[string][]string{}}
		jt, err := d.API.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: h.name, TTL: "1h"})
		if err != nil {
			return nil, fmt.Errorf("join token for %s: %w", h.name, err)
		}
		h.token = jt.Token
		hosts[i] = h
	}
	peers := map[string][]string{}
	for i := range o.instances {
		g := i % o.groups
		h := hosts[(i/o.groups)%o.hosts]
		in := &instance{name: fmt.Sprintf("g%02d-%03d", g, i/o.groups), group: fmt.Sprintf("g%02d", g), pid: 100000 + i, deployment: deps[g]}
		port := 20000 + 3*i
		_, err := d.API.CreateInstance(ctx, apitypes.Instance{Name: in.name, Group: in.group, Host: h.name,
			Listen: fmt.Sprintf("127.0.0.1:%d", port), StatusListen: fmt.Sprintf("127.0.0.1:%d", port+1),
			GossipListen: fmt.Sprintf("127.0.0.1:%d", port+2)})
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", in.name, err)
		}
		h.ins = append(h.ins, in)
		peers[in.group] = append(peers[in.group], in.name)
	}
	logf("joining %d simulated node managers", len(hosts))
	for _, h := range hosts {
		h.peers = peers
		var err error
		if h.c, err = d.JoinSimulated(ctx, h.token, 30*time.Second); err != nil {
			return nil, fmt.Errorf("join %s: %w", h.name, err)
		}
		if err := h.beat(ctx); err != nil {
			return nil, fmt.Errorf("first heartbeat of %s: %w", h.name, err)
		}
	}
	return hosts, nil
}

func waitHealthy(ctx context.Context, api *client.Client, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		o, err := api.Overview(ctx)
		if err != nil {
			return fmt.Errorf("overview: %w", err)
		}
		healthy := 0
		for _, g := range o.Groups {
			healthy += g.ByStatus["Healthy"]
		}
		if healthy == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d instances Healthy after a minute", healthy, n)
		}
		if !pause.For(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in to the console as a browser does: the sign-in form's
// token, the password, the session cookie.
func signIn(ctx context.Context, d *localdomain.Domain, user, password string) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(d.CAPEM) {
		return nil, errors.New("the domain CA's certificate does not parse")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	// Compression as a browser asks for it, by hand: the sizes are those
	// on the wire.
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableCompression: true}}
	page, _, _, err := get(ctx, c, d.AdminURL+"/ui/login", "")
	if err != nil {
		return nil, err
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		return nil, errors.New("the sign-in page has no form token")
	}
	form := url.Values{"user": {user}, "password": {password}, "csrf": {m[1]}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.AdminURL+"/ui/login", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="groups"`) {
		return nil, fmt.Errorf("sign in: %s, not the overview", resp.Status)
	}
	return c, nil
}

// get asks as a browser does (gzip accepted, the ETag of an earlier
// answer when etag is set) and answers the body as sent, its size on the
// wire and the answer's ETag.
func get(ctx context.Context, c *http.Client, u, etag string) (string, int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, "", err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, "", fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, "", fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK && (etag == "" || resp.StatusCode != http.StatusNotModified) {
		return "", 0, "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	size := len(b)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return "", 0, "", fmt.Errorf("GET %s: %w", u, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			return "", 0, "", fmt.Errorf("GET %s: %w", u, err)
		}
	}
	return string(b), size, resp.Header.Get("ETag"), nil
}

// pageTimes is one page's serving times and size.
type pageTimes struct {
	path  string
	times []time.Duration
	bytes int
}

// pagePaths are what is measured: each page and the live part its script
// asks for every second.
var pagePaths = []string{"/ui/", "/ui/live/overview", "/ui/topology", "/ui/live/topology", "/ui/groups/g00", "/ui/live/groups/g00"}

func servePages(ctx context.Context, c *http.Client, base string, n int) ([]pageTimes, error) {
	var out []pageTimes
	for _, p := range pagePaths {
		logf("serving %s %d times", p, n)
		pt := pageTimes{path: p}
		for i := range n + n/10 {
			start := time.Now()
			_, size, _, err := get(ctx, c, base+p, "")
			if err != nil {
				return nil, err
			}
			// The first tenth warms up (connections, caches).
			if i >= n/10 {
				pt.times = append(pt.times, time.Since(start))
			}
			pt.bytes = size
		}
		out = append(out, pt)
	}
	return out, nil
}

// statusChanges opens the overview in a real Chromium and, changes times
// each way, has a node manager report one instance of g00 failing (then
// healthy again): the time from the heartbeat's acknowledgement to the
// open page's counts changing.
func statusChanges(ctx context.Context, d *localdomain.Domain, con *http.Client, hosts []*host, user, password string, changes int) (shown, answered []time.Duration, err error) {
	path, lookErr := exec.LookPath("chromium")
	if lookErr != nil {
		logf("no chromium on PATH: the status change is not measured (apt-get install chromium)")
		return nil, nil, nil
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		// The admin node's certificate is issued by the domain's own CA,
		// which this throwaway profile does not trust.
		chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(1280, 800))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// The first run starts the browser and its tab, with their own
	// lifetime: not a step's, whose end would close them.
	if err := chromedp.Do(browser); err != nil {
		return nil, nil, fmt.Errorf("start chromium: %w", err)
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) error {
		c, cancel := context.WithTimeout(browser, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			return fmt.Errorf("browser: %s: %w", what, err)
		}
		return nil
	}
	logf("signing in in Chromium")
	if err := step("sign in", chromedp.Navigate(d.AdminURL+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SetValue(chromedp.CSS("#user-field"), user),
		chromedp.SetValue(chromedp.CSS("#password-field"), password),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#groups"))); err != nil {
		return nil, nil, err
	}
	// The instance that changes: the first of g00, on the first host.
	h, in := hosts[0], hosts[0].ins[0]
	total := 0
	for _, x := range hosts {
		for _, y := range x.ins {
			if y.group == in.group {
				total++
			}
		}
	}
	row := regexp.MustCompile(`(?s)data-group="` + in.group + `">.*?</tr>`)
	for k := range 2 * changes {
		failing := k%2 == 0
		healthy := total
		if failing {
			healthy--
		}
		want := fmt.Sprintf(`data-status="Healthy">%d Healthy<`, healthy)
		// The page notes the moment its live part shows the change: a
		// poll from here would see it only as often as it looks.
		watch := fmt.Sprintf(`(() => { window.benchShown = 0;
			const shows = () => (document.querySelector('#groups tr[data-group=%q] [data-status="Healthy"]')||{}).textContent === "%d Healthy";
			const mo = new MutationObserver(() => { if (!window.benchShown && shows()) { window.benchShown = Date.now(); mo.disconnect(); } });
			mo.observe(document.getElementById("live"), {childList: true, subtree: true}); return true; })()`, in.group, healthy)
		if err := step("watch the page", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[bool](watch)(ctx, tg)
			return chromedp.Void{}, err
		}); err != nil {
			return nil, nil, err
		}
		// At a random moment of the page's second: each change comes
		// as likely just before its refresh as just after.
		if !pause.For(ctx, mrand.N(time.Second)) {
			return nil, nil, ctx.Err()
		}
		h.mu.Lock()
		in.lastError = ""
		if failing {
			in.lastError = fmt.Sprintf("bench: change %d", k)
		}
		h.mu.Unlock()
		if err := h.beat(ctx); err != nil {
			return nil, nil, fmt.Errorf("heartbeat of the change: %w", err)
		}
		known := time.Now()
		// The console's live answer, asked for here as fast as it comes.
		for {
			body, _, _, err := get(ctx, con, d.AdminURL+"/ui/live/overview", "")
			if err != nil {
				return nil, nil, err
			}
			if strings.Contains(row.FindString(strings.ReplaceAll(body, `\"`, `"`)), want) {
				answered = append(answered, time.Since(known))
				break
			}
			if time.Since(known) > 30*time.Second {
				return nil, nil, fmt.Errorf("change %d: not in the console's answer after 30 s", k)
			}
		}
		var at int64
		if err := step(fmt.Sprintf("change %d shown", k), func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			var err error
			at, err = chromedp.Poll[int64](`window.benchShown`, chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
			return chromedp.Void{}, err
		}); err != nil {
			return nil, nil, err
		}
		shown = append(shown, time.UnixMilli(at).Sub(known))
	}
	return shown, answered, nil
}

// refreshes is what each page's script transfers in a minute of
// refreshes with nothing changing but the clock: the first answer, then
// the If-None-Match of the last one every second (the time, 60 answers
// a minute, is not slept: the answers are asked for one after the other,
// which only the "ago" of the hosts' last contact tells apart).
func refreshes(ctx context.Context, c *http.Client, base string) (map[string]int, error) {
	out := map[string]int{}
	for _, p := range []string{"/ui/live/overview", "/ui/live/topology", "/ui/live/groups/g00"} {
		etag, total := "", 0
		for range 60 {
			_, n, tag, err := get(ctx, c, base+p, etag)
			if err != nil {
				return nil, err
			}
			total += n
			if tag != "" {
				etag = tag
			}
		}
		out[p] = total
	}
	return out, nil
}

func report(o options, load string, pages []pageTimes, static map[string]int, refresh map[string]int, shown, answered []time.Duration) {
	fmt.Printf("\nconsolebench: %d instances in %d groups on %d hosts (simulated node managers), load average before: %s\n\n",
		o.instances, o.groups, o.hosts, load)
	fmt.Println("| page | p50 ms | p99 ms | max ms | KB on the wire |")
	fmt.Println("|---|---|---|---|---|")
	sizes := map[string]int{}
	for _, p := range pages {
		slices.Sort(p.times)
		fmt.Printf("| `%s` | %.1f | %.1f | %.1f | %.1f |\n", p.path, measure.MS(measure.Percentile(p.times, 50)),
			measure.MS(measure.Percentile(p.times, 99)), measure.MS(p.times[len(p.times)-1]), float64(p.bytes)/1024)
		sizes[p.path] = p.bytes
	}
	css, js := static["/ui/static/console.css"], static["/ui/static/console.js"]
	fmt.Printf("\nstatic (gzip): console.css %.1f KB, console.js %.1f KB\n", float64(css)/1024, float64(js)/1024)
	fmt.Println("\n| page | opened: HTML+CSS+JS+first refresh, KB | each refresh that changed, KB | 60 refreshes, nothing changed, KB |")
	fmt.Println("|---|---|---|---|")
	for _, p := range [][2]string{{"/ui/", "/ui/live/overview"}, {"/ui/topology", "/ui/live/topology"}, {"/ui/groups/g00", "/ui/live/groups/g00"}} {
		fmt.Printf("| `%s` | %.1f | %.1f | %.1f |\n", p[0], float64(sizes[p[0]]+css+js+sizes[p[1]])/1024, float64(sizes[p[1]])/1024, float64(refresh[p[1]])/1024)
	}
	if len(shown) > 0 {
		sorted := slices.Sorted(slices.Values(shown))
		fmt.Printf("\nstatus change known by the admin node (heartbeat acknowledged) → in the console's live answer (%d changes): p50 %.1f ms, max %.1f ms\n",
			len(answered), measure.MS(measure.Percentile(answered, 50)), measure.MS(slices.Max(answered)))
		fmt.Printf("status change known by the admin node → shown in the open overview in Chromium (%d changes): p50 %.0f ms, max %.0f ms\n",
			len(shown), measure.MS(measure.Percentile(sorted, 50)), measure.MS(sorted[len(sorted)-1]))
	}
	fmt.Printf("load average after: %s\n", measure.LoadAvg())
}
