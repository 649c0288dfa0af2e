package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/bench/internal/measure"
)

// killRound is one SIGKILL (or, with -stop, SIGSTOP) of the admin node
// the node managers were attached to. The times are from t0, just before the signal, each the
// last node manager's.
type killRound struct {
	victim int
	// From the node managers' logs: the first "moving to the next" (the
	// client gave up on the victim) and the first answer to their watch
	// of instances from the survivor ("desired instances": attached).
	moved, answered time.Duration
	// As the survivor sees it: its kernel holds a TCP connection from
	// every node manager (/proc, polled), and its GET /overview shows a
	// heartbeat of every host after t0 (polled).
	connected, heartbeat time.Duration
	// lease: the survivor's GET /overview names it the holder of the
	// background lease; only when the victim held it.
	lease      time.Duration
	victimHeld bool
	// restart: the victim started again until healthy.
	restart time.Duration
	// notOnVictim are node managers not connected to the victim before
	// the kill; elsewhere are moves logged to another than the survivor.
	notOnVictim, elsewhere []string
	timedOut               bool
}

// kills kills the admin node the node managers are attached to, o.rounds
// times, starting it again after each: the rounds alternate between B
// (where the node managers start) and A.
func (b *bench) kills(ctx context.Context) ([]killRound, error) {
	o := b.o
	logf("%d rounds of SIGKILL or SIGSTOP (poll the node managers' sockets every %s, the survivor's overview every %s)", o.rounds, o.poll, o.overviewPoll)
	var rounds []killRound
	cur := 1
	for r := 1; r <= o.rounds; r++ {
		time.Sleep(500*time.Millisecond + mrand.N(time.Second))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		kr, err := b.kill(ctx, cur)
		if err != nil {
			return nil, err
		}
		rounds = append(rounds, kr)
		if o.verbose {
			fmt.Printf("  round %2d: kill %s: moved %6.1f  answered %6.1f  connected %6.1f  heartbeat %7.1f  lease %7.1f ms; restarted in %6.1f ms%s\n",
				r, adminName(kr.victim), measure.MS(kr.moved), measure.MS(kr.answered), measure.MS(kr.connected), measure.MS(kr.heartbeat),
				measure.MS(kr.lease), measure.MS(kr.restart), map[bool]string{true: "  TIMED OUT", false: ""}[kr.timedOut])
		}
		cur = 1 - cur
	}
	return rounds, nil
}

func (b *bench) kill(ctx context.Context, victim int) (killRound, error) {
	o := b.o
	kr := killRound{victim: victim}
	v, s := b.admins[victim], b.admins[1-victim]
	on := b.connected(v)
	for _, h := range b.hosts {
		if !containsString(on, h.Name) {
			kr.notOnVictim = append(kr.notOnVictim, h.Name)
		}
	}
	ov, err := s.API.Overview(ctx)
	if err != nil {
		return kr, fmt.Errorf("overview through %s: %w", s.Name, err)
	}
	kr.victimHeld = strings.Contains(ov.LeaseHolder, v.Addr)
	offsets := map[string]int64{}
	for _, h := range b.hosts {
		if fi, err := os.Stat(h.Node.Log); err == nil {
			offsets[h.Name] = fi.Size()
		}
	}

	rctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	sig := syscall.SIGKILL
	if o.stop {
		sig = syscall.SIGSTOP
	}
	t0 := time.Now()
	if err := syscall.Kill(v.Proc().Pid(), sig); err != nil {
		return kr, fmt.Errorf("signal %s: %w", v.Name, err)
	}
	var wg sync.WaitGroup
	var sockets, overview measure.Polls
	wg.Go(func() {
		sockets = measure.PollUntil(rctx, o.poll, t0, func() bool { return len(b.connected(s)) == len(b.hosts) })
	})
	wg.Go(func() {
		overview = measure.PollUntil(rctx, o.overviewPoll, t0, func() bool {
			ov, err := s.API.Overview(rctx)
			if err != nil {
				return false
			}
			now := time.Since(t0)
			if kr.victimHeld && kr.lease == 0 && strings.Contains(ov.LeaseHolder, s.Addr) {
				kr.lease = now
			}
			beat := 0
			for _, h := range ov.Hosts {
				if !h.LastContact.Before(t0) {
					beat++
				}
			}
			if kr.heartbeat == 0 && beat == len(b.hosts) {
				kr.heartbeat = now
			}
			// A stopped admin node keeps its session, and the lease
			// with it: not waited for.
			return kr.heartbeat > 0 && (!kr.victimHeld || kr.lease > 0 || o.stop)
		})
	})
	wg.Wait()
	if o.stop {
		syscall.Kill(v.Proc().Pid(), syscall.SIGKILL)
	}
	<-v.Proc().Done()
	kr.connected = sockets.Took
	kr.timedOut = !sockets.OK || !overview.OK

	for _, h := range b.hosts {
		var moved, answered time.Time
		scanNodeLog(h.Node.Log, offsets[h.Name], func(l nodeLine) bool {
			switch {
			case l.at.Before(t0):
			case l.Msg == "admin node failing: moving to the next" && moved.IsZero():
				moved = l.at
				if !strings.Contains(l.To, s.Addr) {
					kr.elsewhere = append(kr.elsewhere, h.Name+" to "+l.To)
				}
			case l.Msg == "desired instances" && answered.IsZero():
				answered = l.at
			}
			return answered.IsZero() || moved.IsZero()
		})
		if moved.IsZero() || answered.IsZero() {
			kr.timedOut = true
			continue
		}
		kr.moved = max(kr.moved, moved.Sub(t0))
		kr.answered = max(kr.answered, answered.Sub(t0))
	}

	restarted := time.Now()
	if err := b.d.StartAdminNode(ctx, v); err != nil {
		return kr, err
	}
	kr.restart = time.Since(restarted)
	return kr, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func reportKills(o options, rounds []killRound, load string) {
	var moved, answered, connected, heartbeat, lease, restart []time.Duration
	timedOut := 0
	var notOn, elsewhere []string
	for i, r := range rounds {
		for _, h := range r.notOnVictim {
			notOn = append(notOn, fmt.Sprintf("round %d: %s", i+1, h))
		}
		elsewhere = append(elsewhere, r.elsewhere...)
		restart = append(restart, r.restart)
		if r.timedOut {
			timedOut++
			continue
		}
		moved = append(moved, r.moved)
		answered = append(answered, r.answered)
		connected = append(connected, r.connected)
		heartbeat = append(heartbeat, r.heartbeat)
		if r.victimHeld && !o.stop {
			lease = append(lease, r.lease)
		}
	}
	fmt.Println()
	sig := "SIGKILL"
	if o.stop {
		sig = "SIGSTOP (then SIGKILL)"
	}
	fmt.Printf("  (i) %s of %s of the admin node the %d node managers were attached to (B, A, B, …; each started again after), load average %s after\n",
		plural(len(rounds), "round"), sig, o.nodes, load)
	header(fmt.Sprintf("ms from %s to ... (the last node manager's)", strings.Fields(sig)[0]))
	row("its client gave up on the killed one (node manager logs)", moved)
	row("the survivor holds a TCP connection from it (/proc, polled)", connected)
	row("the survivor answered its watch (node manager logs: the figure)", answered)
	row(fmt.Sprintf("the survivor's overview shows its heartbeat (every %s)", o.heartbeat), heartbeat)
	row(fmt.Sprintf("the survivor holds the background lease (%d of the rounds)", len(lease)), lease)
	row("the killed admin node started again: healthy", restart)
	fmt.Printf("  every node manager attached to the survivor: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 <= 5 s: %s)\n",
		measure.MS(measure.Percentile(answered, 50)), measure.MS(measure.Percentile(answered, 99)), measure.MS(measure.Percentile(answered, 100)),
		verdict(timedOut == 0 && len(answered) > 0 && measure.Percentile(answered, 99) <= 5*time.Second))
	if timedOut > 0 {
		fmt.Printf("  WARNING: %d round(s) not complete within %s, left out of the figures\n", timedOut, o.timeout)
	}
	if len(notOn) > 0 {
		fmt.Printf("  WARNING: node managers not connected to the admin node killed: %v\n", notOn)
	}
	if len(elsewhere) > 0 {
		fmt.Printf("  WARNING: node managers moved elsewhere than the survivor: %v\n", elsewhere)
	}
}
