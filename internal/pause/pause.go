// Package pause waits for a while unless a context ends first: the sleep
// of every retry loop and background job of the processes and benchmarks.
package pause

import (
	"context"
	"time"
)

// For waits d, and reports false when ctx ended first.
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
