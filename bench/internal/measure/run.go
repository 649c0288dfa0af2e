package measure

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Parallel runs f(0..n-1) on k goroutines and returns the first error
// (or ctx's): a setup of thousands of API calls, on a few connections.
func Parallel(ctx context.Context, n, k int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range k {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// Latencies collects round trips by when they started, so that those of
// a measurement window can be taken apart from the warm-up's.
type Latencies struct {
	mu  sync.Mutex
	at  []time.Time
	dur []time.Duration
}

// Add records a round trip that started at at and took d.
func (l *Latencies) Add(at time.Time, d time.Duration) {
	l.mu.Lock()
	l.at = append(l.at, at)
	l.dur = append(l.dur, d)
	l.mu.Unlock()
}

// Between returns the round trips that started in [from, to).
func (l *Latencies) Between(from, to time.Time) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for i, at := range l.at {
		if !at.Before(from) && at.Before(to) {
			out = append(out, l.dur[i])
		}
	}
	return out
}
