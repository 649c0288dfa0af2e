package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// trafficLoad sends GETs through gateways without pause until stop: half of its
// workers on keep-alive connections, half on a new connection per request.
// Every request that does not come back 200 from the upstream is a
// failure.
type trafficLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	ok    map[string]int
	fails []string
}

func startTrafficLoad(t *testing.T, addrs ...string) *trafficLoad {
	t.Helper()
	l := &trafficLoad{stop: make(chan struct{}), ok: map[string]int{}}
	for _, addr := range addrs {
		for i := range 4 {
			tr := &http.Transport{DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 2}
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer tr.CloseIdleConnections()
				for n := 0; ; n++ {
					select {
					case <-l.stop:
						return
					default:
					}
					l.record(addr, l.get(c, fmt.Sprintf("http://%s/load/%d/%d", addr, i, n)))
				}
			}()
		}
	}
	t.Cleanup(l.halt)
	return l
}

func (l *trafficLoad) get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Upstream") == "" {
		return fmt.Errorf("GET %s: %d %q", url, resp.StatusCode, body)
	}
	return nil
}

func (l *trafficLoad) record(addr string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.fails = append(l.fails, time.Now().Format("15:04:05.000")+" "+err.Error())
		return
	}
	l.ok[addr]++
}

func (l *trafficLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// counts returns the successes by address and the failures so far.
func (l *trafficLoad) counts() (map[string]int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok := map[string]int{}
	for k, v := range l.ok {
		ok[k] = v
	}
	return ok, append([]string(nil), l.fails...)
}

// waitServed waits until every address served n more requests than in
// before.
func (l *trafficLoad) waitServed(t *testing.T, before map[string]int, n int) {
	t.Helper()
	until(t, fmt.Sprintf("%d more requests through each gateway", n), func() (bool, string) {
		ok, _ := l.counts()
		for addr, c := range ok {
			if c < before[addr]+n {
				return false, fmt.Sprintf("%s: %d requests, %d before", addr, c, before[addr])
			}
		}
		return len(ok) > 0, fmt.Sprint(ok)
	})
}

// checkNoFailure stops l and fails the test if any request failed.
func (l *trafficLoad) checkNoFailure(t *testing.T) map[string]int {
	t.Helper()
	l.halt()
	ok, fails := l.counts()
	if len(fails) > 0 {
		t.Errorf("%d requests failed under load (%v succeeded), first: %s", len(fails), ok, strings.Join(fails[:min(len(fails), 5)], "; "))
	}
	return ok
}

// TestInstanceRestartWithoutDowntime: a group of two instances under
// continuous load, each restarted with `instance restart`: a new process
// per instance, the old ones gone, and not one request refused or failed.
func TestInstanceRestartWithoutDowntime(t *testing.T) {
	up := startUpstream(t, "one", nil)
	d := setUpNode(t, up, "web-1", "web-2")
	before := d.waitLocal(t, "both instances running", d.appliedEverywhere(1))

	l := startTrafficLoad(t, d.instances["web-1"][0], d.instances["web-2"][0])
	counted, _ := l.counts()
	l.waitServed(t, counted, 50)
	for _, name := range []string{"web-1", "web-2"} {
		out := d.cli.ok(t, "", "instance", "restart", name, "--timeout", "60s")
		if !strings.Contains(out, "Instance "+name+" is ready again") {
			t.Fatalf("instance restart %s said %q", name, out)
		}
		// Traffic goes on through the new process.
		counted, _ = l.counts()
		l.waitServed(t, counted, 50)
	}
	served := l.checkNoFailure(t)
	t.Logf("requests served during the restarts: %v", served)

	after := d.waitLocal(t, "both instances ready under new processes", func(v map[string]localapi.InstanceView) bool {
		for _, name := range []string{"web-1", "web-2"} {
			if v[name].PID == 0 || v[name].PID == before[name].PID || !v[name].Ready {
				return false
			}
		}
		return true
	})
	for _, name := range []string{"web-1", "web-2"} {
		old := before[name].PID
		until(t, fmt.Sprintf("the old process of %s (pid %d) exited", name, old), func() (bool, string) {
			return !alive(old), "still alive"
		})
		// The new process took the old one's sockets: the restart was a
		// takeover, not a stop and a start.
		log, err := os.ReadFile(filepath.Join(d.nodeDir, "instances", name, "gateway.log"))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("serving on the sockets taken over; the replaced gateway drains: pid=%d", old); !strings.Contains(string(log), want) {
			t.Errorf("the log of %s does not say %q", name, want)
		}
		t.Logf("%s: pid %d → %d", name, old, after[name].PID)
	}
	d.mustRouteTo(t, "one", "web-1", "web-2")
}
