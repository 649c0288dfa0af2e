package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

func TestSpecValidateAndHash(t *testing.T) {
	for _, bad := range []Spec{
		{Name: "", Binary: "/bin/true"},
		{Name: "a/b", Binary: "/bin/true"},
		{Name: "-a", Binary: "/bin/true"},
		{Name: "a", Binary: "true"},
		{Name: "a", Binary: "/bin/true", Env: []string{"NOEQUALS"}},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	a := spec("a", "--listen", ":1")
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	b := spec("a", "--listen", ":2")
	if a.Hash() == b.Hash() {
		t.Error("different args, same hash")
	}
	c := spec("a", "--listen", ":1")
	c.Group = "other"
	if a.Hash() != c.Hash() {
		t.Error("group changed the hash")
	}
	c.Env = []string{"GATEHOUSE_INSTANCE_SECRET=rotated"}
	if a.Hash() == c.Hash() {
		t.Error("a new secret did not change the hash")
	}
}

func TestBackoffDefaults(t *testing.T) {
	s, err := New(context.Background(), Options{Driver: nopDriver{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []time.Duration{100, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000}
	for n, w := range want {
		if got := s.backoff(n); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %v, want %v", n, got, w*time.Millisecond)
		}
	}
	if got := s.backoff(1000); got != 30*time.Second {
		t.Errorf("backoff(1000) = %v", got)
	}
}

type nopDriver struct{}

func (nopDriver) Start(context.Context, Spec) (Proc, error) { return nil, errors.New("no") }
func (nopDriver) Adopt(context.Context) ([]Proc, error)     { return nil, nil }
func (nopDriver) Remove(context.Context, string) error      { return nil }

// A gateway is started with its arguments, environment and log; a stop
// sends SIGTERM, which it honours.
func TestStartAndStop(t *testing.T) {
	t.Setenv("GATEHOUSE_NODE_ONLY", "not for gateways")
	h := newHarness(t, "", Options{}, ExecOptions{})
	h.reconcile(spec("a"))
	st := h.running("a")
	if st.Group != "g" || st.Restarts != 0 || st.StartedAt.IsZero() || st.SpecHash != spec("a").Hash() {
		t.Errorf("state: %+v", st)
	}
	argv, err := readCmdline(st.PID)
	if err != nil || !slices.Equal(argv, append([]string{fakegw}, spec("a").Args...)) {
		t.Errorf("cmdline %q, %v", argv, err)
	}
	if pg, err := syscall.Getpgid(st.PID); err != nil || pg != st.PID {
		t.Errorf("process group %d (%v), want its own %d", pg, err, st.PID)
	}
	var rec pidRecord
	if err := json.Unmarshal([]byte(readLog(t, filepath.Join(h.dir, "instances", "a", PidFileName))), &rec); err != nil || rec.PID != st.PID || rec.StartTicks == 0 || rec.Hash != st.SpecHash {
		t.Errorf("pid file %+v, %v", rec, err)
	}
	logPath := h.drv.LogPath("a")
	h.wait("log lines", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "a line on stderr") && strings.Contains(string(b), "GATEHOUSE_INSTANCE_SECRET")
	})
	log := readLog(t, logPath)
	for _, want := range []string{"gatehouse node: starting instance a", "fakegw: started", "fakegw: env GATEHOUSE_INSTANCE_SECRET=secret-a", "a line on stderr"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "GATEHOUSE_NODE_ONLY") {
		t.Errorf("the node manager's GATEHOUSE_* variables reached the gateway:\n%s", log)
	}

	start := time.Now()
	h.reconcile()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stop took %v", took)
	}
	if _, ok := h.sup.State("a"); ok {
		t.Error("a stopped instance is still listed")
	}
	if alive(st.PID) {
		t.Error("process still alive")
	}
	states := h.rec.of("a")
	last := states[len(states)-1]
	if last.Process != StateStopped || last.LastExit != "exit status 0" {
		t.Errorf("last state %+v", last)
	}
	if !slices.ContainsFunc(states, func(s State) bool { return s.Process == StateStopping }) {
		t.Error("no stopping state")
	}
	if !strings.Contains(readLog(t, logPath), "fakegw: SIGTERM") {
		t.Error("the gateway did not see SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(h.dir, "instances", "a", PidFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left: %v", err)
	}
}

// A gateway that ignores SIGTERM is killed after the drain timeout.
func TestStopKillsAfterDrainTimeout(t *testing.T) {
	h := newHarness(t, "", Options{DrainTimeout: 300 * time.Millisecond}, ExecOptions{})
	h.reconcile(spec("stubborn", "--ignore-term"))
	st := h.up("stubborn")
	killLater(t, st.PID)
	start := time.Now()
	h.reconcile()
	took := time.Since(start)
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("stop took %v, want the drain timeout then a kill", took)
	}
	states := h.rec.of("stubborn")
	if last := states[len(states)-1]; last.Process != StateStopped || last.LastExit != "signal: killed" {
		t.Errorf("last state %+v", last)
	}
	if alive(st.PID) {
		t.Error("still alive")
	}
}

// kill -9 of a gateway: restarted, and the state shows it.
func TestKilledGatewayIsRestarted(t *testing.T) {
	h := newHarness(t, "", Options{}, ExecOptions{})
	h.reconcile(spec("a"))
	old := h.running("a")
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var st State
	h.wait("restart", func() bool {
		st, _ = h.sup.State("a")
		return st.Process == StateRunning && st.PID != old.PID && st.PID != 0
	})
	if st.Restarts != 1 || st.LastExit != "signal: killed" || st.ExitedAt.IsZero() || !st.StartedAt.After(old.StartedAt) {
		t.Errorf("state after restart: %+v", st)
	}
	if !slices.ContainsFunc(h.rec.of("a"), func(s State) bool { return s.Process == StateBackoff }) {
		t.Error("no backoff state between the exit and the restart")
	}
}

// A gateway that exits at once every time: the delays double up to the
// maximum, the state turns to crash-loop, the retries go on at the
// backoff's pace; new flags start it afresh.
func TestCrashLoop(t *testing.T) {
	opts := Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 160 * time.Millisecond, CrashLoopAfter: 4}
	h := newHarness(t, "", opts, ExecOptions{})
	h.reconcile(spec("crashy", "--exit", "3"))
	waits := func() []State {
		var out []State
		for _, st := range h.rec.of("crashy") {
			// (A run of a crash-looping instance shows crash-loop too,
			// with its pid.)
			if st.PID == 0 && (st.Process == StateBackoff || st.Process == StateCrashLoop) {
				out = append(out, st)
			}
		}
		return out
	}
	h.wait("7 exits", func() bool { return len(waits()) >= 7 })
	ws := waits()[:7]
	wantDelay := []time.Duration{20, 40, 80, 160, 160, 160, 160}
	for i, w := range ws {
		if got := w.NextStartAt.Sub(w.ExitedAt); got != wantDelay[i]*time.Millisecond {
			t.Errorf("wait %d: delay %v, want %v", i, got, wantDelay[i]*time.Millisecond)
		}
		wantState := StateBackoff
		if i >= 3 {
			wantState = StateCrashLoop
		}
		if w.Process != wantState {
			t.Errorf("wait %d: state %s, want %s", i, w.Process, wantState)
		}
		if w.LastExit != "exit status 3" || w.PID != 0 {
			t.Errorf("wait %d: %+v", i, w)
		}
		if w.Restarts != i {
			t.Errorf("wait %d: restarts %d, want %d", i, w.Restarts, i)
		}
		if i > 0 && w.StartedAt.Before(ws[i-1].NextStartAt) {
			t.Errorf("run %d started at %v, before its backoff ended at %v", i, w.StartedAt, ws[i-1].NextStartAt)
		}
	}
	if st, _ := h.sup.State("crashy"); st.Process != StateCrashLoop && st.Process != StateStarting {
		// Between two tries a crash-looping instance shows crash-loop;
		// a run that has not lasted MinRunTime shows it too.
		t.Errorf("state now %+v", st)
	}

	// Fixed flags: started at once, out of the crash loop.
	h.reconcile(spec("crashy"))
	st := h.running("crashy")
	if !st.NextStartAt.IsZero() {
		t.Errorf("next start still set: %+v", st)
	}
}

// Reconcile starts the missing, stops the undesired, restarts the changed
// and leaves the rest alone.
func TestReconcile(t *testing.T) {
	h := newHarness(t, "", Options{}, ExecOptions{})
	h.reconcile(spec("a"), spec("b"))
	a, b := h.running("a"), h.running("b")

	h.reconcile(spec("a"), spec("b"))
	if a2, b2 := h.running("a"), h.running("b"); a2.PID != a.PID || b2.PID != b.PID {
		t.Fatalf("an unchanged reconcile restarted: %d->%d, %d->%d", a.PID, a2.PID, b.PID, b2.PID)
	}

	bNew := spec("b", "--listen", "127.0.0.1:0")
	h.reconcile(bNew, spec("c"))
	if _, ok := h.sup.State("a"); ok || alive(a.PID) {
		t.Error("a is not stopped")
	}
	b2 := h.running("b")
	if b2.PID == b.PID || alive(b.PID) || b2.Restarts != 1 || b2.SpecHash != bNew.Hash() {
		t.Errorf("b not restarted with its new flags: %+v (old pid %d)", b2, b.PID)
	}
	if argv, _ := readCmdline(b2.PID); !slices.Contains(argv, "--listen") {
		t.Errorf("b runs %q", argv)
	}
	h.running("c")
	if names := stateNames(h.sup.States()); !slices.Equal(names, []string{"b", "c"}) {
		t.Errorf("states %v", names)
	}

	// Invalid input changes nothing.
	ctx := context.Background()
	if err := h.sup.Reconcile(ctx, []Spec{spec("b"), spec("b")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate: %v", err)
	}
	if err := h.sup.Reconcile(ctx, []Spec{{Name: "../x", Binary: fakegw}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if b3 := h.running("b"); b3.PID != b2.PID {
		t.Error("an invalid reconcile restarted b")
	}
}

func stateNames(sts []State) []string {
	var out []string
	for _, st := range sts {
		out = append(out, st.Name)
	}
	return out
}

func TestRestart(t *testing.T) {
	h := newHarness(t, "", Options{}, ExecOptions{})
	h.reconcile(spec("a"))
	old := h.up("a")
	if err := h.sup.Restart(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	st := h.running("a")
	if st.PID == old.PID || st.Restarts != 1 || alive(old.PID) || st.LastExit != "exit status 0" {
		t.Errorf("after restart: %+v (old pid %d)", st, old.PID)
	}
	if err := h.sup.Restart(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("restart unknown: %v", err)
	}
}

// A supervisor closed without stopping its gateways; the next one on the
// same data dir adopts them (same pids, no restart) and supervises them:
// a kill -9 of an adopted gateway is noticed and restarted.
func TestReadoption(t *testing.T) {
	dir := t.TempDir()
	a := newHarness(t, dir, Options{}, ExecOptions{})
	a.reconcile(spec("a"), spec("b"))
	pa, pb := a.running("a"), a.running("b")
	killLater(t, pa.PID)
	killLater(t, pb.PID)
	if err := a.sup.Close(); err != nil {
		t.Fatal(err)
	}
	if !alive(pa.PID) || !alive(pb.PID) {
		t.Fatal("Close stopped the gateways")
	}

	b := newHarness(t, dir, Options{}, ExecOptions{})
	for _, want := range []State{pa, pb} {
		st, ok := b.sup.State(want.Name)
		if !ok || st.PID != want.PID || st.Process != StateRunning || !st.Adopted || st.Restarts != 0 || st.SpecHash != want.SpecHash {
			t.Errorf("adopted %s: %+v, want pid %d", want.Name, st, want.PID)
		}
	}
	b.reconcile(spec("a"), spec("b"))
	if st := b.running("a"); st.PID != pa.PID {
		t.Errorf("reconcile restarted an adopted gateway: %d -> %d", pa.PID, st.PID)
	}

	if err := syscall.Kill(pa.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var st State
	b.wait("adopted a restarted", func() bool {
		st, _ = b.sup.State("a")
		return st.Process == StateRunning && st.PID != pa.PID && st.PID != 0
	})
	if st.Restarts != 1 || st.Adopted || !strings.Contains(st.LastExit, "adopted") {
		t.Errorf("after the kill: %+v", st)
	}
	if sb := b.running("b"); sb.PID != pb.PID {
		t.Errorf("b changed: %d -> %d", pb.PID, sb.PID)
	}

	// Stopping an adopted gateway: SIGTERM to it, seen by polling.
	b.reconcile(spec("a"))
	if alive(pb.PID) {
		t.Error("adopted b not stopped")
	}
	if !strings.Contains(readLog(t, b.drv.LogPath("b")), "fakegw: SIGTERM") {
		t.Error("adopted b did not get SIGTERM")
	}
}

// The node manager SIGKILLed (a process of its own): its gateways keep
// serving; a new one adopts the same pids and supervises them.
func TestNodeManagerKilled(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	nm := exec.Command(self, "-test.run=^$")
	nm.Env = append(os.Environ(), envNodeManager+"="+dir, "SUPERVISOR_TEST_FAKEGW="+fakegw)
	nm.Stderr = os.Stderr
	out, err := nm.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := nm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nm.Process.Kill(); nm.Wait() })
	var pids map[string]int
	if err := json.Unmarshal([]byte(firstLine(t, bufio.NewReader(out))), &pids); err != nil || len(pids) != 2 {
		t.Fatalf("node manager said %v (%v)", pids, err)
	}
	for _, pid := range pids {
		killLater(t, pid)
	}
	get := func(name string) string {
		addr, err := os.ReadFile(filepath.Join(dir, "instances", name, "listen.addr"))
		if err != nil {
			return err.Error()
		}
		resp, err := http.Get("http://" + string(addr) + "/")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	for name, pid := range pids {
		want := "ok " + strconv.Itoa(pid)
		waitfor.Cond(t, 10*time.Second, name+" answering "+want, func() (bool, string) {
			got := get(name)
			return got == want, got
		})
	}

	if err := nm.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	nm.Wait()
	for name, pid := range pids {
		if !alive(pid) {
			t.Fatalf("%s (pid %d) died with its node manager", name, pid)
		}
		if got := get(name); got != "ok "+strconv.Itoa(pid) {
			t.Errorf("%s after the node manager's death: %q", name, got)
		}
	}

	h := newHarness(t, dir, Options{}, ExecOptions{})
	for name, pid := range pids {
		if st, ok := h.sup.State(name); !ok || st.PID != pid || !st.Adopted {
			t.Errorf("%s: %+v, want adopted pid %d", name, st, pid)
		}
	}
	spec := func(name string) Spec {
		return Spec{Name: name, Binary: fakegw, Args: []string{"gateway", "--instance", name, "--listen", "127.0.0.1:0"}}
	}
	h.reconcile(spec("a"), spec("b"))
	if st := h.running("a"); st.PID != pids["a"] {
		t.Errorf("a restarted by the reconcile: %d -> %d", pids["a"], st.PID)
	}
	// Its parent is gone: nobody may reap it, and a zombie is dead too.
	syscall.Kill(pids["a"], syscall.SIGKILL)
	h.wait("a restarted", func() bool {
		st, _ := h.sup.State("a")
		return st.Process == StateRunning && st.PID != pids["a"] && st.Restarts == 1
	})
	if st := h.running("b"); st.PID != pids["b"] {
		t.Errorf("b changed: %+v", st)
	}
}

// A pid file whose pid is now another process is not adopted, and nothing
// is signalled.
func TestPidReuseGuard(t *testing.T) {
	dir := t.TempDir()
	boot, err := readBootID()
	if err != nil {
		t.Fatal(err)
	}
	self, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	other := exec.Command(fakegw, "gateway", "--instance", "other")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	otherStat, err := readProcStat(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	otherArgv := []string{fakegw, "gateway", "--instance", "other"}
	records := map[string]pidRecord{
		// The test process itself: right start time, another command line.
		"self": {PID: os.Getpid(), StartTicks: self.StartTicks, BootID: boot, Argv: []string{fakegw, "gateway", "--instance", "self"}},
		// A live fakegw with its command line, but a start time that is
		// not its own: the pid was reused.
		"reused": {PID: other.Process.Pid, StartTicks: otherStat.StartTicks + 1, BootID: boot, Argv: otherArgv},
		// Right process, written before the last boot.
		"oldboot": {PID: other.Process.Pid, StartTicks: otherStat.StartTicks, BootID: "another-boot", Argv: otherArgv},
		// A process that is gone.
		"gone": {PID: 1 << 22, StartTicks: 1, BootID: boot, Argv: otherArgv},
	}
	for name, rec := range records {
		d := filepath.Join(dir, "instances", name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, PidFileName), mustJSON(rec), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, dir, Options{}, ExecOptions{})
	if sts := h.sup.States(); len(sts) != 0 {
		t.Errorf("adopted %+v", sts)
	}
	for name := range records {
		if _, err := os.Stat(filepath.Join(dir, "instances", name, PidFileName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale pid file %s kept: %v", name, err)
		}
	}
	if !alive(other.Process.Pid) {
		t.Error("the unrelated process was signalled")
	}

	// The real record of that process is adopted.
	d := filepath.Join(dir, "instances", "other")
	os.MkdirAll(d, 0o700)
	rec := pidRecord{PID: other.Process.Pid, StartTicks: otherStat.StartTicks, BootID: boot, Argv: otherArgv, Hash: "sha256:x"}
	if err := os.WriteFile(filepath.Join(d, PidFileName), mustJSON(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, dir, Options{}, ExecOptions{})
	if st, ok := h2.sup.State("other"); !ok || st.PID != other.Process.Pid || !st.Adopted {
		t.Errorf("the genuine record was not adopted: %+v", st)
	}
}

// The log is rotated by size while the gateway writes, and at a start.
func TestLogRotation(t *testing.T) {
	h := newHarness(t, "", Options{}, ExecOptions{LogMaxSize: 4096, LogKeep: 2, PollInterval: 20 * time.Millisecond})
	h.reconcile(spec("chatty", "--spam-every", "1ms"))
	h.running("chatty")
	logPath := h.drv.LogPath("chatty")
	h.wait("two rotations", func() bool {
		_, err := os.Stat(logPath + ".2")
		return err == nil
	})
	h.reconcile() // stop it, so the sizes hold still
	for _, p := range []string{logPath + ".1", logPath + ".2"} {
		if b := readLog(t, p); len(b) <= 4096 || !strings.Contains(b, "fakegw 0") {
			t.Errorf("%s: %d bytes", p, len(b))
		}
	}
	if _, err := os.Stat(logPath + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("more than LogKeep rotated files: %v", err)
	}
	if fi, err := os.Stat(logPath); err != nil || fi.Size() > 256<<10 {
		t.Errorf("live log not bounded: %v %v", fi, err)
	}
	// No hole at the start of the truncated file: the child appends.
	if b := readLog(t, logPath); strings.Contains(b, "\x00") {
		t.Error("NUL bytes in the truncated log: the child does not append")
	}

	// At a start, an oversized log is renamed aside.
	big := strings.Repeat("old line\n", 1000)
	if err := os.WriteFile(logPath, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	h.reconcile(spec("chatty"))
	h.running("chatty")
	if got := readLog(t, logPath+".1"); got != big {
		t.Errorf("gateway.log.1 is not the old log (%d bytes)", len(got))
	}
	h.wait("new log", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.HasPrefix(string(b), "=== ") && strings.Contains(string(b), "fakegw: started")
	})
}

// The bad binary: start fails, retried with backoff, LastError shown.
func TestStartFailure(t *testing.T) {
	h := newHarness(t, "", Options{BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}, ExecOptions{})
	sp := spec("missing")
	sp.Binary = "/nonexistent/gatehouse"
	h.reconcile(sp)
	h.wait("a failed start", func() bool {
		st, _ := h.sup.State("missing")
		return (st.Process == StateBackoff || st.Process == StateCrashLoop) && strings.Contains(st.LastError, "no such file")
	})
	h.wait("crash loop", func() bool {
		st, _ := h.sup.State("missing")
		return st.Process == StateCrashLoop
	})
}
