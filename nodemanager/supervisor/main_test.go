package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// fakegw is the path of testdata/fakegw, built by TestMain: the
// "gateway" every exec test runs.
var fakegw string

// envNodeManager makes the test binary a node manager (see
// runNodeManager) instead of running the tests.
const envNodeManager = "SUPERVISOR_TEST_NODE_MANAGER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envNodeManager); dir != "" {
		runNodeManager(dir, os.Getenv("SUPERVISOR_TEST_FAKEGW"))
		return
	}
	tmp, err := os.MkdirTemp("", "supervisor-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakegw = filepath.Join(tmp, "fakegw")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	build := exec.Command(goBin, "build", "-o", fakegw, "./testdata/fakegw")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fakegw:", err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// runNodeManager is a node manager in a process of its own, for the test
// that SIGKILLs it: it starts two gateways, prints their pids as a JSON
// line and waits to be killed.
func runNodeManager(dir, bin string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "node manager:", err)
		os.Exit(1)
	}
	drv, err := NewExec(ExecOptions{DataDir: dir, PollInterval: 50 * time.Millisecond})
	if err != nil {
		fail(err)
	}
	s, err := New(context.Background(), Options{Driver: drv})
	if err != nil {
		fail(err)
	}
	specs := []Spec{
		{Name: "a", Binary: bin, Args: []string{"gateway", "--instance", "a", "--listen", "127.0.0.1:0"}},
		{Name: "b", Binary: bin, Args: []string{"gateway", "--instance", "b", "--listen", "127.0.0.1:0"}},
	}
	if err := s.Reconcile(context.Background(), specs); err != nil {
		fail(err)
	}
	pids := map[string]int{}
	for deadline := time.Now().Add(10 * time.Second); len(pids) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, st := range s.States() {
			if st.Process == StateRunning {
				pids[st.Name] = st.PID
			}
		}
	}
	b, _ := json.Marshal(pids)
	fmt.Println(string(b))
	select {}
}

// ---- helpers shared by the tests ----

func spec(name string, extra ...string) Spec {
	return Spec{
		Name:   name,
		Group:  "g",
		Binary: fakegw,
		Args:   append([]string{"gateway", "--instance", name}, extra...),
		Env:    []string{"GATEHOUSE_INSTANCE_SECRET=secret-" + name},
	}
}

// recorder keeps every state OnChange reports.
type recorder struct {
	mu     sync.Mutex
	states []State
}

func (r *recorder) add(st State) {
	r.mu.Lock()
	r.states = append(r.states, st)
	r.mu.Unlock()
}

func (r *recorder) of(name string) []State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []State
	for _, st := range r.states {
		if st.Name == name {
			out = append(out, st)
		}
	}
	return out
}

type harness struct {
	t   *testing.T
	dir string
	drv *Exec
	sup *Supervisor
	rec *recorder
}

// newHarness makes an exec supervisor on dir (a new temporary one when
// empty). Cleanup stops every instance it still supervises.
func newHarness(t *testing.T, dir string, opts Options, eopts ExecOptions) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	eopts.DataDir = dir
	if eopts.PollInterval == 0 {
		eopts.PollInterval = 50 * time.Millisecond
	}
	drv, err := NewExec(eopts)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	opts.Driver = drv
	opts.OnChange = rec.add
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, drv: drv, sup: s, rec: rec}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Reconcile(ctx, nil); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("cleanup: %v", err)
		}
		s.Close()
	})
	return h
}

func (h *harness) reconcile(specs ...Spec) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.sup.Reconcile(ctx, specs); err != nil {
		h.t.Fatal(err)
	}
}

// wait polls cond until it holds or 10 s pass.
func (h *harness) wait(what string, cond func() bool) {
	h.t.Helper()
	waitfor.Cond(h.t, 10*time.Second, what, func() (bool, string) {
		return cond(), fmt.Sprintf("states: %+v", h.sup.States())
	})
}

// running waits until name runs and returns its state.
func (h *harness) running(name string) State {
	h.t.Helper()
	var st State
	h.wait(name+" running", func() bool {
		var ok bool
		st, ok = h.sup.State(name)
		return ok && st.Process == StateRunning && st.PID > 0
	})
	return st
}

// up waits until name runs and its fakegw has set up its signal handling
// (it logs its start line before, and the stderr line right after).
func (h *harness) up(name string) State {
	h.t.Helper()
	st := h.running(name)
	h.wait(name+" up", func() bool {
		b, _ := os.ReadFile(h.drv.LogPath(name))
		i := strings.LastIndex(string(b), fmt.Sprintf("fakegw: started pid=%d ", st.PID))
		return i >= 0 && strings.Contains(string(b[i:]), "a line on stderr")
	})
	return st
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := readProcStat(pid)
	return err == nil && st.State != 'Z'
}

// killLater makes sure pid, a fakegw this test started, is gone when the
// test ends.
func killLater(t *testing.T, pid int) {
	start, err := readProcStat(pid)
	t.Cleanup(func() {
		if st, err2 := readProcStat(pid); err == nil && err2 == nil && st.StartTicks == start.StartTicks {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func firstLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimSpace(line)
}
