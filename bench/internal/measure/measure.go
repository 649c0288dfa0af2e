// Package measure holds what the benchmark programs under bench/ all
// need: CPU time, memory and load of processes from /proc, polling until
// a condition holds, round trips and their percentiles, free loopback
// ports, and what a simulator of many nodes needs (the open files limit,
// setup calls in parallel).
package measure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, 100 on Linux on every architecture Go supports.
const clockTicks = 100

// ProcCPU is the user and system CPU time process pid has used, 0 when it
// cannot be read.
func ProcCPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	return ticks(f[11]) + ticks(f[12])
}

// TreeCPU is the user and system CPU time process pid and its children
// have used: its own, that of the children it has waited for, and that
// of each child alive now; 0 when pid cannot be read. It is a server's
// that forks a process per connection, as PostgreSQL's postmaster and
// its backends: a backend that ends during a window moves from the live
// children into the postmaster's waited-for time, so the difference over
// a window counts it once.
func TreeCPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 15 {
		return 0
	}
	total := ticks(f[11]) + ticks(f[12]) + ticks(f[13]) + ticks(f[14])
	entries, _ := os.ReadDir("/proc")
	parent := strconv.Itoa(pid)
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cf := procStat(child); len(cf) >= 15 && cf[1] == parent {
			total += ticks(cf[11]) + ticks(cf[12]) + ticks(cf[13]) + ticks(cf[14])
		}
	}
	return total
}

// procStat is /proc/<pid>/stat split into fields after the command name
// (field 2, which may hold spaces): state is [0], ppid [1], utime [11],
// stime [12], cutime [13], cstime [14]; nil when it cannot be read.
func procStat(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(data[i+1:]))
}

func ticks(field string) time.Duration {
	n, _ := strconv.ParseInt(field, 10, 64)
	return time.Duration(n) * time.Second / clockTicks
}

// ProcStatus reads a field of /proc/<pid>/status: kB fields in MiB, others
// as they are.
func ProcStatus(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, err
		}
		if len(f) > 1 && f[1] == "kB" {
			v /= 1024
		}
		return v, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// RaiseFileLimit raises this process's open files limit to want, up to
// the hard limit, and fails when that is not enough: a simulator holds a
// connection per simulated node.
func RaiseFileLimit(want int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= uint64(want) {
		return nil
	}
	lim.Cur = min(max(uint64(want), 4096), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open files limit to %d: %w", lim.Cur, err)
	}
	if lim.Cur < uint64(want) {
		return fmt.Errorf("open files limit %d (hard) is below the %d needed: raise it (ulimit -Hn) or lower -nodes", lim.Max, want)
	}
	return nil
}

// SelfCPU is the user and system CPU time this process has used, 0 when
// it cannot be read.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAvg is the machine's 1, 5 and 15 minute load averages, for reports:
// figures of a busy machine are read differently.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

// Polls is what PollUntil saw.
type Polls struct {
	// Took is the time from t0 to the end of the poll that said yes, or
	// of the last one when ctx ended first: a poll's own time and the
	// pause before it count against the figure.
	Took time.Duration
	// OK is false when ctx ended before a poll said yes.
	OK bool
	// Times are each poll's own duration.
	Times []time.Duration
}

// PollUntil calls done, pausing every between two calls, until it says
// yes or ctx ends.
func PollUntil(ctx context.Context, every time.Duration, t0 time.Time, done func() bool) Polls {
	var p Polls
	for {
		start := time.Now()
		p.OK = done()
		end := time.Now()
		p.Times = append(p.Times, end.Sub(start))
		p.Took = end.Sub(t0)
		if p.OK || ctx.Err() != nil {
			return p
		}
		if every > 0 {
			time.Sleep(every)
		}
	}
}

// Percentile is the nearest-rank p-th percentile of ds (0 when empty).
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// FreeAddr is a loopback address nobody listens on, and that no earlier
// call returned: the kernel may give a port just closed again, and a
// benchmark that asks for several (an instance's HTTP and status
// addresses) must get different ones.
func FreeAddr() (string, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		l.Close()
		handedOut.Lock()
		fresh := !handedOut.addrs[addr]
		handedOut.addrs[addr] = true
		handedOut.Unlock()
		if fresh {
			return addr, nil
		}
	}
	return "", errors.New("no loopback port that was not handed out already")
}

// handedOut holds the addresses FreeAddr returned.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// RandomHex is n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
