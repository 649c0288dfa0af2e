package measure

import (
	"context"
	"testing"
	"time"
)

func TestPollUntil(t *testing.T) {
	t0 := time.Now()
	n := 0
	p := PollUntil(context.Background(), time.Millisecond, t0, func() bool { n++; return n == 3 })
	if !p.OK || len(p.Times) != 3 || p.Took < 2*time.Millisecond {
		t.Errorf("%+v after %d calls, want OK after 3 polls and 2 pauses", p, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p := PollUntil(ctx, time.Hour, t0, func() bool { return false }); p.OK || len(p.Times) != 1 {
		t.Errorf("%+v with ctx ended, want one poll, not OK", p)
	}
}
