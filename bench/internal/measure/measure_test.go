package measure

import (
	"context"
	"net"
	"os"
	"os/exec"
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

// A child's CPU time counts in its parent's tree, whether it still runs
// or was waited for.
func TestTreeCPU(t *testing.T) {
	spin := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
	if err := spin.Run(); err != nil {
		t.Skip("no sh:", err)
	}
	self := os.Getpid()
	if own, tree := ProcCPU(self), TreeCPU(self); tree < own+spin.ProcessState.SystemTime()+spin.ProcessState.UserTime()-2*time.Second/clockTicks {
		t.Errorf("tree %s < own %s + the waited-for child's %s", tree, own, spin.ProcessState.UserTime()+spin.ProcessState.SystemTime())
	}
	if TreeCPU(-1) != 0 || ProcCPU(-1) != 0 {
		t.Error("CPU of a process that does not exist")
	}
}

func TestConnectedTo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{l.Addr().String(), true},
		{other, false},
	} {
		got, err := ConnectedTo(os.Getpid(), tc.addr)
		if err != nil || got != tc.want {
			t.Errorf("ConnectedTo(self, %s) = %v, %v; want %v", tc.addr, got, err, tc.want)
		}
	}
	if _, err := ConnectedTo(os.Getpid(), "[::1]:80"); err == nil {
		t.Error("an IPv6 address accepted")
	}
}
