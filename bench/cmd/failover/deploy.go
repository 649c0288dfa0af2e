package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/bench/internal/localdomain"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
)

// deployRound is what one deployment through A took, from t0 (the POST
// sent to A).
type deployRound struct {
	number uint64
	post   time.Duration
	// viaB: B shows every instance running it (the figure); viaA: A
	// does, which learns the instances' states B heard from the store.
	viaB, viaA time.Duration
	// From the logs (zero when not found): every node manager received
	// it from B, the last gateway applied it.
	received, applied time.Duration
	timedOut          bool
	// strays are node managers found connected to A after it.
	strays []string
}

// deployments deploys through A, o.deploys times, while the node managers
// watch B, and times each until B shows every gateway running it (and,
// besides, until A does).
func (b *bench) deployments(ctx context.Context) ([]deployRound, error) {
	o := b.o
	logf("%d deployments through A, node managers on B (poll B every %s, A every %s)", o.deploys, o.poll, o.overviewPoll)
	var rounds []deployRound
	t0s := map[uint64]time.Time{}
	for r := 1; r <= o.deploys; r++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		dep, err := b.deploy(ctx, r)
		if err != nil {
			return nil, err
		}
		t0s[dep.number] = dep.t0
		rd := deployRound{number: dep.number, post: dep.post}
		rctx, cancel := context.WithTimeout(ctx, o.timeout)
		viaA := make(chan measure.Polls, 1)
		go func() {
			viaA <- measure.PollUntil(rctx, o.overviewPoll, dep.t0, func() bool { return b.allApplied(rctx, 0, dep.number) })
		}()
		pb := measure.PollUntil(rctx, o.poll, dep.t0, func() bool { return b.allApplied(rctx, 1, dep.number) })
		pa := <-viaA
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rd.viaB, rd.viaA, rd.timedOut = pb.Took, pa.Took, !pb.OK || !pa.OK
		rd.strays = b.connected(b.admins[0])
		rounds = append(rounds, rd)
		if o.verbose {
			fmt.Printf("  deployment #%d: B shows all applied %7.1f ms, A %7.1f ms (POST %5.1f ms)%s\n", rd.number,
				measure.MS(rd.viaB), measure.MS(rd.viaA), measure.MS(rd.post), map[bool]string{true: "  TIMED OUT", false: ""}[rd.timedOut])
		}
	}
	received := map[uint64]time.Time{}
	for _, h := range b.hosts {
		first := map[uint64]time.Time{}
		scanNodeLog(h.Node.Log, 0, func(l nodeLine) bool {
			n := uint64(l.Number)
			if _, ok := first[n]; !ok && l.Msg == "deployment received" {
				first[n] = l.at
			}
			return true
		})
		for n, at := range first {
			if at.After(received[n]) {
				received[n] = at
			}
		}
	}
	applied := gatewaysApplied(b.hosts)
	for i := range rounds {
		n := rounds[i].number
		if at, ok := received[n]; ok {
			rounds[i].received = at.Sub(t0s[n])
		}
		if at, ok := applied[n]; ok {
			rounds[i].applied = at.Sub(t0s[n])
		}
	}
	return rounds, nil
}

func reportDeploys(o options, rounds []deployRound, load string) {
	var post, received, applied, viaB, viaA []time.Duration
	timedOut := 0
	var strays []string
	for _, r := range rounds {
		strays = append(strays, r.strays...)
		if r.timedOut {
			timedOut++
			continue
		}
		post = append(post, r.post)
		viaB = append(viaB, r.viaB)
		viaA = append(viaA, r.viaA)
		if r.received > 0 {
			received = append(received, r.received)
		}
		if r.applied > 0 {
			applied = append(applied, r.applied)
		}
	}
	fmt.Println()
	fmt.Printf("  (ii) %s through A, the node managers watching B (polling B every %s, A every %s); load average %s after\n",
		plural(len(rounds), "deployment"), o.poll, o.overviewPoll, load)
	header("ms from POST /deployments on A to ...")
	row("POST answered by A (signed, stored in PostgreSQL)", post)
	row("every node manager received it from B (their logs)", received)
	row("the last gateway applied it (gateway logs, 1 ms)", applied)
	row("B: GET /groups/{g}/instances all applied (the figure)", viaB)
	row("A: the same (B's heartbeats reach A through the store)", viaA)
	fmt.Printf("  deploy through A → applied, as B shows it: p50 %.1f ms, p99 %.1f ms (target p99 <= 150 ms: %s)\n",
		measure.MS(measure.Percentile(viaB, 50)), measure.MS(measure.Percentile(viaB, 99)),
		verdict(timedOut == 0 && len(viaB) > 0 && measure.Percentile(viaB, 99) <= 150*time.Millisecond))
	if timedOut > 0 {
		fmt.Printf("  WARNING: %d deployment(s) not shown applied within %s, left out of the figures\n", timedOut, o.timeout)
	}
	if len(strays) > 0 {
		fmt.Printf("  WARNING: node managers found connected to A during the deployments: %v\n", strays)
	}
}

// nodeLine is a line of a node manager's JSON log.
type nodeLine struct {
	Msg    string  `json:"@message"`
	At     string  `json:"@timestamp"`
	Number float64 `json:"number"`
	From   string  `json:"from"`
	To     string  `json:"to"`
	at     time.Time
}

// scanNodeLog calls fn with each line of a node manager's JSON log from
// byte offset on, until fn says stop.
func scanNodeLog(path string, offset int64, fn func(nodeLine) (more bool)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l nodeLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		var err error
		if l.at, err = time.Parse(time.RFC3339Nano, l.At); err != nil {
			continue
		}
		if !fn(l) {
			return
		}
	}
}

// gatewaysApplied reads, in every gateway's log, when it first applied
// each deployment, and returns the last gateway's time for each number.
func gatewaysApplied(hosts []*localdomain.Host) map[uint64]time.Time {
	last := map[uint64]time.Time{}
	for _, h := range hosts {
		logs, _ := filepath.Glob(h.GatewayLog("*"))
		for _, path := range logs {
			first := map[uint64]time.Time{}
			localdomain.ScanGatewayLog(path, "deployment applied: number=", func(at time.Time, rest string) bool {
				_, num, _ := strings.Cut(rest, "number=")
				num, _, _ = strings.Cut(num, " ")
				var n uint64
				if _, err := fmt.Sscan(num, &n); err == nil {
					if _, ok := first[n]; !ok {
						first[n] = at
					}
				}
				return true
			})
			for n, at := range first {
				if at.After(last[n]) {
					last[n] = at
				}
			}
		}
	}
	return last
}
