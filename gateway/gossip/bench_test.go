package gossip

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// Run with:
//
//	go test ./gateway/gossip -run '^$' -bench . -benchtime 1x
//
// Each benchmark does its whole measurement once, whatever b.N.

var (
	detectionTrials  = flag.Int("gossip.trials", 10, "BenchmarkDetection: trials")
	detectionMembers = flag.Int("gossip.members", 4, "BenchmarkDetection: members per trial")
	// memberlist's first push/pull comes 30 to 45 s after a start with 50
	// members (a random stagger below PushPullInterval, then the interval
	// doubled above 32 members): a warm-up of 45 s and a window of 60 s
	// measure two push/pulls per member, the steady state.
	overheadWarmup = flag.Duration("gossip.warmup", 45*time.Second, "BenchmarkGossipOverhead50: time between forming and measuring")
	overheadFor    = flag.Duration("gossip.overhead", 60*time.Second, "BenchmarkGossipOverhead50: measurement time")
	overheadN      = flag.Int("gossip.overhead-members", 50, "BenchmarkGossipOverhead50: members")

	// Tuning for both benchmarks; zero keeps the LAN profile.
	benchProbe     = flag.Duration("gossip.probe-interval", 0, "ProbeInterval")
	benchTimeout   = flag.Duration("gossip.probe-timeout", 0, "ProbeTimeout")
	benchSuspicion = flag.Int("gossip.suspicion-mult", 0, "SuspicionMult")
	benchMaxMult   = flag.Int("gossip.suspicion-max-mult", 0, "SuspicionMaxTimeoutMult")
	benchLog       = flag.String("gossip.log", "", "write every member's log (debug) to this file")
)

// quiet sets the benchmark's tuning and logging.
func quiet(c *Config) {
	c.Logger = hclog.NewNullLogger()
	if *benchLog != "" {
		benchLogOnce.Do(func() {
			f, err := os.Create(*benchLog)
			if err != nil {
				panic(err)
			}
			benchLogger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: f})
		})
		c.Logger = benchLogger.Named(c.Meta.Instance)
	}
	c.ProbeInterval, c.ProbeTimeout = *benchProbe, *benchTimeout
	c.SuspicionMult, c.SuspicionMaxTimeoutMult = *benchSuspicion, *benchMaxMult
}

var (
	benchLogOnce sync.Once
	benchLogger  hclog.Logger
)

// BenchmarkDetection measures, over several trials, the time from a
// member's abrupt stop (Shutdown) to the moment every survivor lists it
// dead.
func BenchmarkDetection(b *testing.B) {
	n := *detectionMembers
	var all, first []time.Duration
	for trial := range *detectionTrials {
		var mu sync.Mutex
		deadAt := map[int]time.Time{} // by survivor
		var killed time.Time          // under mu; zero until the kill
		victimName := fmt.Sprintf("m%d", n-1)
		ms := clusterWith(b, n, func(i int) []opt {
			return []opt{quiet, withObserve(func(name, state string) {
				if name == victimName && state == StateDead {
					mu.Lock()
					if _, ok := deadAt[i]; !ok && !killed.IsZero() {
						deadAt[i] = time.Now()
					}
					mu.Unlock()
				}
			})}
		})
		time.Sleep(500 * time.Millisecond) // let the probe schedules settle
		victim := ms[n-1]
		mu.Lock()
		killed = time.Now()
		mu.Unlock()
		if err := victim.Shutdown(); err != nil {
			b.Fatal(err)
		}
		waitfor.True(b, 10*time.Second, "every survivor to mark the victim dead", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(deadAt) == n-1
		})
		mu.Lock()
		var last, earliest time.Duration
		for _, at := range deadAt {
			d := at.Sub(killed)
			last = max(last, d)
			if earliest == 0 || d < earliest {
				earliest = d
			}
		}
		mu.Unlock()
		all, first = append(all, last), append(first, earliest)
		b.Logf("trial %d: first survivor %s, all survivors %s", trial+1, earliest.Round(time.Millisecond), last.Round(time.Millisecond))
		for _, m := range ms {
			_ = m.Shutdown()
		}
	}
	slices.Sort(all)
	slices.Sort(first)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(median(all)), "ms-median")
	b.ReportMetric(ms(all[len(all)-1]), "ms-max")
	b.ReportMetric(ms(all[0]), "ms-min")
	b.ReportMetric(ms(median(first)), "ms-first-median")
	b.ReportMetric(0, "ns/op")
}

func median(s []time.Duration) time.Duration {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// clusterWith is cluster with options per member.
func clusterWith(tb testing.TB, n int, opts func(i int) []opt) []*Member {
	tb.Helper()
	var ms []*Member
	for i := range n {
		o := opts(i)
		switch {
		case i == 1:
			o = append(o, withSeeds(ms[0].Addr()))
		case i > 1:
			o = append(o, withSeeds(ms[0].Addr(), ms[i-1].Addr()))
		}
		ms = append(ms, start(tb, "g", fmt.Sprintf("m%d", i), o...))
	}
	waitConverged(tb, ms, 10*time.Second+time.Duration(n)*time.Second)
	return ms
}

func waitConverged(tb testing.TB, ms []*Member, timeout time.Duration) {
	tb.Helper()
	waitfor.True(tb, timeout, "the cluster to converge", func() bool {
		for _, m := range ms {
			alive := 0
			for _, p := range m.Peers() {
				if p.State == StateAlive {
					alive++
				}
			}
			if alive != len(ms)-1 {
				return false
			}
		}
		return true
	})
}

// BenchmarkGossipOverhead50 runs 50 members of one group in this process
// and measures what each sends per second once the cluster has formed:
// probes, acks, push/pull, gossip. It also counts peers wrongly declared
// dead meanwhile (flapping under load).
func BenchmarkGossipOverhead50(b *testing.B) {
	n := *overheadN
	var mu sync.Mutex
	var falseDeaths []string
	observe := func(name, state string) {
		if state != StateAlive {
			mu.Lock()
			falseDeaths = append(falseDeaths, name+" "+state)
			mu.Unlock()
		}
	}
	began := time.Now()
	ms := []*Member{start(b, "g", "m0", quiet, withObserve(observe))}
	for i := 1; i < n; i++ {
		// Seeds as a node manager gives them: the other instances (here
		// the first few, enough to join).
		seeds := []string{ms[0].Addr()}
		if i > 1 {
			seeds = append(seeds, ms[i-1].Addr())
		}
		ms = append(ms, start(b, "g", fmt.Sprintf("m%d", i), quiet, withObserve(observe), withSeeds(seeds...)))
	}
	waitConverged(b, ms, 60*time.Second)
	converged := time.Since(began)
	time.Sleep(*overheadWarmup)

	before := make([]Stats, n)
	for i, m := range ms {
		before[i] = m.Stats()
	}
	t0 := time.Now()
	time.Sleep(*overheadFor)
	secs := time.Since(t0).Seconds()

	var total, packets, streamBytes, maxBytes uint64
	for i, m := range ms {
		s := m.Stats()
		sent := s.BytesSent() - before[i].BytesSent()
		total += sent
		maxBytes = max(maxBytes, sent)
		packets += s.PacketsSent - before[i].PacketsSent
		streamBytes += s.StreamBytesSent - before[i].StreamBytesSent
	}
	for _, m := range ms {
		_ = m.Shutdown()
	}
	mu.Lock()
	defer mu.Unlock()
	victims := map[string]int{}
	for _, d := range falseDeaths {
		victims[d]++
	}
	b.Logf("%d members converged in %s; warm-up %s; measured %.1f s; %d observations of a peer wrongly declared dead (victim: observers) %v", n, converged.Round(time.Millisecond), *overheadWarmup, secs, len(falseDeaths), victims)
	per := float64(n) * secs
	b.ReportMetric(float64(total)/per, "B/s/member")
	b.ReportMetric(float64(maxBytes)/secs, "B/s-max-member")
	b.ReportMetric(float64(packets)/per, "pkt/s/member")
	b.ReportMetric(float64(streamBytes)/per, "tcpB/s/member")
	b.ReportMetric(float64(len(falseDeaths)), "false-deaths")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAliveCheckCopy is the group check of a copy of an alive message
// already accepted, which each member gets several times per member and
// deployment.
func BenchmarkAliveCheckCopy(b *testing.B) {
	m := start(b, "g", "m")
	meta, err := encodeMeta(Meta{Instance: "p", Group: "g", Host: "host-p", Deployment: 12, Checksum: "sha256:0f343b0931126a20f133d67c2b018a3b5a8b2d1c2e2f3a4b5c6d7e8f9a0b1c2d", Status: "127.0.0.1:8085"})
	if err != nil {
		b.Fatal(err)
	}
	n := &memberlist.Node{Name: "p", Meta: meta}
	b.ReportAllocs()
	for b.Loop() {
		if err := (*groupCheck)(m).NotifyAlive(n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransportWriteTo is one UDP datagram sent to a member's
// "IP:port", as each probe, ack and gossip packet is.
func BenchmarkTransportWriteTo(b *testing.B) {
	tr, err := newTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Shutdown() })
	go func() {
		for range tr.PacketCh() {
		}
	}()
	to := fmt.Sprintf("127.0.0.1:%d", tr.GetAutoBindPort())
	msg := make([]byte, 120)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.WriteTo(msg, to); err != nil {
			b.Fatal(err)
		}
	}
}
