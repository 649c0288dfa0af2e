package e2e

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/metrics"
)

// steadyLoad sends requests through gateways at a steady pace, one in
// four to route fail, and counts the answers it gets.
type steadyLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu  sync.Mutex
	got sent
	// bad are the requests that got no answer or an unexpected one: the
	// gateways are never disturbed here, so any is a failure.
	bad []string
}

// loadPace is the pause between two requests through one gateway: about
// 100 a second each, enough to fill every traffic batch without taking
// the machine from the processes under test.
const loadPace = 10 * time.Millisecond

// startLoad sends requests through every instance of the hosts until end.
func startLoad(hosts ...*nmDomain) *steadyLoad {
	l := &steadyLoad{stop: make(chan struct{}), got: sent{}}
	for _, h := range hosts {
		for instance, addrs := range h.instances {
			l.wg.Go(func() { l.run(instance, addrs[0]) })
		}
	}
	return l
}

func (l *steadyLoad) run(instance, addr string) {
	tick := time.NewTicker(loadPace)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		route := "ok"
		if i%4 == 3 {
			route = "fail"
		}
		resp, err := noKeepAlive.Get(fmt.Sprintf("http://%s/%s/%d", addr, route, i))
		l.mu.Lock()
		switch {
		case err != nil:
			l.bad = append(l.bad, fmt.Sprintf("%s /%s/%d: %v", instance, route, i, err))
		case resp.StatusCode != routeStatus[route]:
			l.bad = append(l.bad, fmt.Sprintf("%s /%s/%d: %s", instance, route, i, resp.Status))
		default:
			l.got.add(instance, route, 1)
		}
		l.mu.Unlock()
		if err == nil {
			resp.Body.Close()
		}
	}
}

// answered returns what got answers so far.
func (l *steadyLoad) answered() sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.got)
}

// end stops the load and returns what got answers, failing the test for
// any request that did not.
func (l *steadyLoad) end(t *testing.T) sent {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if len(l.bad) > 0 {
		t.Errorf("%d requests through the gateways got no answer or a wrong one, among them %v", len(l.bad), l.bad[:min(5, len(l.bad))])
	}
	return l.got
}

// mutingRelay relays TCP connections to an address, and can stop relaying
// the answers, discarding them, while still relaying the requests.
type mutingRelay struct {
	addr  string
	muted atomic.Bool
}

// startMutingRelay relays connections from a loopback port to target.
// A connection ends when either side ends it.
func startMutingRelay(t *testing.T, target string) *mutingRelay {
	t.Helper()
	r := &mutingRelay{}
	r.addr = relayTCP(t, "127.0.0.1:0", target, r.answer)
	return r
}

// answer relays what the target sends, or drops it once muted.
func (r *mutingRelay) answer(to io.Writer, from io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 && !r.muted.Load() {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *mutingRelay) mute()   { r.muted.Store(true) }
func (r *mutingRelay) unmute() { r.muted.Store(false) }

// gatedRelay relays TCP connections to an address while open; closed,
// it ends each connection at once.
type gatedRelay struct {
	addr string
	open atomic.Bool
}

func startGatedRelay(t *testing.T, target string) *gatedRelay {
	t.Helper()
	g := &gatedRelay{}
	g.addr = relayTCP(t, "127.0.0.1:0", target, func(to io.Writer, from io.Reader) {
		if g.open.Load() {
			io.Copy(to, from)
		}
	})
	return g
}

// TestDomainMetricsExactPG is TestDomainMetricsExact on a domain in
// PostgreSQL served by two admin nodes: under a steady load through two
// gateways on two node managers, the admin node both node managers send
// their traffic batches to is killed (SIGKILL) while each node manager
// waits for its answer to a batch it stored (its answers were held back
// meanwhile); the node managers move to the other one, and the domain's
// metrics read through it count exactly the requests that got answers,
// in all, by status, by route and by instance: a batch the dying node
// stored is not counted again when it is resent, and one it had not
// stored is not lost.
func TestDomainMetricsExactPG(t *testing.T) {
	f := newPGFleet(t)
	up := startOkFailUpstream(t)
	f.cli[0].ok(t, "", "group", "create", nmGroup)
	f.hosts[0] = f.addHost(t, 0, "h1", "gw1")
	f.hosts[1] = f.addHost(t, 1, "h2", "gw2")
	cfg := filepath.Join(f.work, "routes.yaml")
	writeFile(t, cfg, twoRouteConfig(up.addr))
	f.cli[0].ok(t, "", "config", "apply", "-f", cfg, "--group", nmGroup)
	f.cli[0].ok(t, "", "deploy", "--group", nmGroup, "-m", "two routes", "--no-wait")
	// Both stick to A, the first of their list, each reached through a
	// relay of its own that can hold its answers back, and cut a batch a
	// second. B is reached through a gate, closed until A is killed: a
	// batch stored meanwhile was stored by A.
	hosts := []string{"h1", "h2"}
	var toA [2]*mutingRelay
	var toB [2]*gatedRelay
	for i, h := range f.hosts {
		toA[i], toB[i] = startMutingRelay(t, f.addr[0]), startGatedRelay(t, f.addr[1])
		runNodeWith(t, h, []string{"--traffic-interval", "1s"}, "https://"+toA[i].addr, "https://"+toB[i].addr)
	}
	f.waitApplied(t, 1)

	load := startLoad(f.hosts[:]...)
	// A stores batches of both node managers, which B reads, and the load
	// goes on: the next batches are being cut and sent when A dies.
	until(t, "traffic of both gateways stored through A and read through B", func() (bool, string) {
		state := ""
		for _, instance := range []string{"gw1", "gw2"} {
			got, err := metricsTotals(t, f.cli[1], "", instance)
			if err != nil {
				return false, err.Error()
			}
			if got.Requests == 0 {
				return false, state + instance + ": none yet"
			}
			state += fmt.Sprintf("%s: %d; ", instance, got.Requests)
		}
		return true, state
	})
	for _, h := range f.hosts {
		if log := h.node.out.String(); strings.Contains(log, "moving to the next") {
			t.Fatalf("a node manager left A before it was killed:\n%s", log)
		}
	}
	// A's answers to a node manager stop reaching it while A goes on
	// storing its batches: the node manager then has a batch A stored
	// and never acknowledged, which it must send B again, and B must not
	// count again. The node's count of stored batches, written in the
	// batch's own transaction, witnesses it: one stored after the count
	// was read (after the mute) was answered after it, and only A
	// stores.
	storedBatches := func(host string) (float64, error) {
		code, _, page := f.api[1].do(t, "GET", "/metrics/prometheus", "")
		if code != http.StatusOK {
			return 0, fmt.Errorf("GET /metrics/prometheus through B: %d %s", code, page)
		}
		return promValue(string(page), fmt.Sprintf(`%s{node=%q,result="stored"}`, metrics.AdminTrafficBatches, host)), nil
	}
	for i, relay := range toA {
		host := hosts[i]
		storedAfter := func(n float64, within time.Duration) (bool, string) {
			return waitfor.Within(within, func() (bool, string) {
				got, err := storedBatches(host)
				if err != nil {
					return false, err.Error()
				}
				return got > n, fmt.Sprintf("%v batches of %s stored, %v before", got, host, n)
			})
		}
		// The node manager's next batch goes over a connection it had
		// (then A stores it) or a new one, whose handshake is muted too
		// (then nothing is stored, and the node retries): the answers
		// flow again until A stores a batch, and the mute is tried again.
		// Which request takes the connection the node had depends on when
		// the mute falls between its heartbeats and its batches, which
		// both come every second: each try mutes at another moment.
		for attempt := 1; ; attempt++ {
			time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
			relay.mute()
			n, err := storedBatches(host)
			if err != nil {
				t.Fatal(err)
			}
			ok, state := storedAfter(n, 4*time.Second)
			if ok {
				break
			}
			if attempt == 10 {
				t.Fatalf("A stored no batch of %s after its answers were muted, %d tries: %s", host, attempt, state)
			}
			t.Logf("%s: A stored no batch within 4s of the mute (try %d): %s; its answers flow again", host, attempt, state)
			relay.unmute()
			// A batch whose answer was muted is sent again after the
			// node's send timeout (30 s).
			if ok, state := storedAfter(n, 45*time.Second); !ok {
				t.Fatalf("%s: no batch stored through A after its answers flowed again: %s", host, state)
			}
		}
	}
	f.admin[0].signal(syscall.SIGKILL)
	killed := time.Now()
	f.admin[0].exit(t, 10*time.Second)
	atKill := load.answered()
	for _, gate := range toB {
		gate.open.Store(true)
	}

	// Both node managers move to B while the load goes on, and B stores
	// batches cut after A died.
	for _, h := range f.hosts {
		for name := range h.instances {
			f.waitBeat(t, 1, name, killed)
		}
		h.node.waitFor(t, nmDeadline, "the node manager leaving A", func() bool {
			return strings.Contains(h.node.out.String(), "moving to the next")
		})
	}
	until(t, "traffic sent after A died stored through B", func() (bool, string) {
		got, err := metricsTotals(t, f.cli[1], "", "")
		if err != nil {
			return false, err.Error()
		}
		all := atKill.total()
		return got.Requests > uint64(all.ok+all.fail), fmt.Sprintf("%d counted, %d answered when A was killed", got.Requests, all.ok+all.fail)
	})
	total := load.end(t)
	all := total.total()
	t.Logf("%d requests answered (%d ok, %d fail) through %v, %d of them before A was killed",
		all.ok+all.fail, all.ok, all.fail, slices.Sorted(maps.Keys(total)), atKill.total().ok+atKill.total().fail)
	waitTotals(t, f.cli[1], "every answered request counted once through B", total)

	// Each node manager did send B the batch A had stored: the domain
	// knows it as a retry of a stored batch, and no batch went missing.
	code, _, page := f.api[1].do(t, "GET", "/metrics/prometheus", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics/prometheus through B: %d %s", code, page)
	}
	for _, host := range hosts {
		dup := promValue(string(page), fmt.Sprintf(`%s{node=%q,result="duplicate"}`, metrics.AdminTrafficBatches, host))
		lost := promValue(string(page), fmt.Sprintf(`%s{node=%q}`, metrics.AdminTrafficLost, host))
		if dup < 1 || lost != 0 {
			t.Errorf("node %s: %v retries of stored batches (want at least the one A stored unacknowledged), %v lost batches (want 0)", host, dup, lost)
		}
	}
}

// promValue reads the sample named exactly series (name and labels) of a
// Prometheus text page, -1 when there is none.
func promValue(page, series string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}
