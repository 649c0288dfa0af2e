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
	var u Usage
	cpu0, self0 := ProcCPU(pid), SelfCPU()
	u.Start = time.Now()
	var rss []float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(u.Start) < d {
		select {
		case <-ctx.Done():
			return u, ctx.Err()
		case <-exited:
			return u, fmt.Errorf("%s exited during the measurement", what)
		case <-tick.C:
		}
		if v, err := ProcStatus(pid, "VmRSS"); err == nil {
			rss = append(rss, v)
		}
		if each != nil {
			each()
		}
	}
	cpu1, self1 := ProcCPU(pid), SelfCPU()
	u.End = time.Now()
	u.Window = u.End.Sub(u.Start)
	u.CPU = float64(cpu1-cpu0) / float64(u.Window)
	u.SelfCPU = float64(self1-self0) / float64(u.Window)
	for _, v := range rss {
		u.RSSMean += v / float64(len(rss))
		u.RSSMax = max(u.RSSMax, v)
	}
	u.HWM, _ = ProcStatus(pid, "VmHWM")
	return u, nil
}
