package measure

import (
	"context"
	"fmt"
	"time"
)

// Usage is what a process used over a measurement window.
type Usage struct {
	Start, End time.Time
	Window     time.Duration
	// CPU is the process's CPU use, SelfCPU this program's, as fractions
	// of one core.
	CPU, SelfCPU float64
	// RSSMean and RSSMax are over the window's samples, HWM the process's
	// peak since it started; all in MiB.
	RSSMean, RSSMax, HWM float64
}

// Watch measures process pid, called what in errors, for d: its CPU time
// and this program's, and its resident memory sampled every second. each,
// if not nil, runs after every sample, for what a caller samples besides.
// It stops with an error when ctx ends or exited (the process's end) is
// closed first.
func Watch(ctx context.Context, pid int, what string, exited <-chan struct{}, d time.Duration, each func()) (Usage, error) {
	us, err := WatchAll(ctx, []Process{{Pid: pid, What: what, Exited: exited}}, d, each)
	return us[0], err
}

// Process is one process WatchAll measures.
type Process struct {
	Pid int
	// What names it in errors.
	What string
	// Exited, if not nil, is closed when it ends.
	Exited <-chan struct{}
	// Tree counts the CPU time of its children too (TreeCPU), and leaves
	// its memory out: a server whose children share memory, whose sum of
	// RSS would count it many times.
	Tree bool
}

// WatchAll is Watch of several processes over one window: a Usage each,
// in order, SelfCPU the same in every one.
func WatchAll(ctx context.Context, ps []Process, d time.Duration, each func()) ([]Usage, error) {
	us := make([]Usage, len(ps))
	cpu := func(p Process) time.Duration {
		if p.Tree {
			return TreeCPU(p.Pid)
		}
		return ProcCPU(p.Pid)
	}
	cpu0 := make([]time.Duration, len(ps))
	for i, p := range ps {
		cpu0[i] = cpu(p)
	}
	self0 := SelfCPU()
	start := time.Now()
	rss := make([][]float64, len(ps))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < d {
		select {
		case <-ctx.Done():
			return us, ctx.Err()
		case <-tick.C:
		}
		for i, p := range ps {
			if p.Exited != nil {
				select {
				case <-p.Exited:
					return us, fmt.Errorf("%s exited during the measurement", p.What)
				default:
				}
			}
			if p.Tree {
				continue
			}
			if v, err := ProcStatus(p.Pid, "VmRSS"); err == nil {
				rss[i] = append(rss[i], v)
			}
		}
		if each != nil {
			each()
		}
	}
	self1, end := SelfCPU(), time.Now()
	for i, p := range ps {
		u := &us[i]
		u.Start, u.End = start, end
		u.Window = end.Sub(start)
		u.CPU = float64(cpu(p)-cpu0[i]) / float64(u.Window)
		u.SelfCPU = float64(self1-self0) / float64(u.Window)
		for _, v := range rss[i] {
			u.RSSMean += v / float64(len(rss[i]))
			u.RSSMax = max(u.RSSMax, v)
		}
		if !p.Tree {
			u.HWM, _ = ProcStatus(p.Pid, "VmHWM")
		}
	}
	return us, nil
}
