package pgtest

import (
	"context"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var srv *Server

func TestMain(m *testing.M) { os.Exit(Main(m, &srv)) }

// Each test's database is its own: a table made in one is not in another,
// and the server does not run as root.
func TestDatabasesApart(t *testing.T) {
	ctx := context.Background()
	a, b := Need(t, srv), Need(t, srv)
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE x (n int)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil || n != 0 {
		t.Errorf("table of another test's database seen: %d, %v", n, err)
	}
	var user string
	if err := ca.QueryRow(ctx, "SELECT current_setting('listen_addresses')").Scan(&user); err != nil || user != "" {
		t.Errorf("listen_addresses %q, %v: want Unix socket only", user, err)
	}
}

// PID is the postmaster's: the backend of a connection is its child.
func TestPID(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, Need(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", backend))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid …: the command may hold spaces.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 2 || fields[1] != strconv.Itoa(srv.PID()) {
		t.Errorf("backend %d has parent %v, want the postmaster %d", backend, fields[:min(2, len(fields))], srv.PID())
	}
}

// Stop ends the server and removes its directory.
func TestStop(t *testing.T) {
	if srv == nil {
		t.Skip(ErrNotInstalled)
	}
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	done := s.done
	s.Stop()
	select {
	case <-done:
	default:
		t.Fatal("postgres still running after Stop")
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left: %v", s.dir, err)
	}
}

// A test process that dies without stopping its server takes the server
// with it: nothing is left running.
func TestCrashedParentStopsServer(t *testing.T) {
	if os.Getenv("PGTEST_CRASH_CHILD") == "1" {
		s, err := Start()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(s.dir, s.cmd.Process.Pid)
		select {} // killed by the parent
	}
	if srv == nil {
		t.Skip(ErrNotInstalled)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestCrashedParentStopsServer$")
	child.Env = append(os.Environ(), "PGTEST_CRASH_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	var pid int
	if _, err := fmt.Fscan(out, &dir, &pid); err != nil {
		child.Process.Kill()
		t.Fatalf("child did not report its server: %v", err)
	}
	child.Process.Kill()
	child.Wait()
	// Only a server seen still running is killed: once gone, its pid may
	// be another process's.
	t.Cleanup(func() {
		if t.Failed() && syscall.Kill(pid, 0) == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	waitfor.Cond(t, 10*time.Second, fmt.Sprintf("postgres %d to end with its test process", pid), func() (bool, string) {
		return syscall.Kill(pid, 0) != nil, "still running"
	})
	// The next server started sweeps the dead one's directory away.
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("dead server's directory: %v", err)
	}
	next, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	next.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		os.RemoveAll(dir)
		t.Errorf("dead server's directory %s left behind: %v", dir, err)
	}
}
