package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// The generated unit passes `systemd-analyze verify` without a warning.
// The driver's use of systemctl is tested with a fake below, and under a
// real systemd booted in a container by the end-to-end test
// TestSystemdNode (e2e/systemd_test.go).
func TestUnitFileVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: `apt-get install systemd` to verify the generated unit")
	}
	version := 0
	if out, err := exec.Command(analyze, "--version").Output(); err == nil {
		version = parseSystemdVersion(out)
	}
	dir := t.TempDir()
	opts := SystemdOptions{
		Binary:         fakegw, // verify checks that ExecStart's binary exists
		DrainTimeout:   30 * time.Second,
		SystemdVersion: version,
	}
	unit, err := UnitFile(opts, SlotA)
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{
		"DynamicUser=yes\n", "User=gatehouse-gateway\n",
		"EnvironmentFile=/etc/gatehouse/gateway/%i.env\n",
		"StateDirectory=gatehouse-gateway/%i\n", "StateDirectoryMode=0700\n",
		"WorkingDirectory=%S/gatehouse-gateway/%i\n",
		"ExecStart=" + fakegw + " $GATEHOUSE_GATEWAY_ARGS\n",
		"NoNewPrivileges=yes\n", "ProtectSystem=strict\n",
		"PrivateTmp=yes\n", "ProtectHome=yes\n",
		"Restart=on-failure\n", "RestartSec=100ms\n",
		"StartLimitIntervalSec=60s\n", "StartLimitBurst=5\n",
		"KillSignal=SIGTERM\n", "TimeoutStopSec=35s\n",
		"[Install]\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	verifySlot := func(slot string, unit []byte) string {
		t.Helper()
		name := map[string]string{SlotA: UnitName, SlotB: UnitNameB}[slot]
		if err := os.WriteFile(filepath.Join(dir, name), unit, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(analyze, "verify", "--man=no", "--recursive-errors=no", filepath.Join(dir, SlotUnit(slot, "web-1")))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	verify := func(unit []byte) string { return verifySlot(SlotA, unit) }
	if out := verify(unit); out != "" {
		t.Errorf("systemd-analyze verify (systemd %d):\n%s\nunit:\n%s", version, out, unit)
	}
	// The second slot: the same unit but for its environment file.
	unitB, err := UnitFile(opts, SlotB)
	if err != nil {
		t.Fatal(err)
	}
	if out := verifySlot(SlotB, unitB); out != "" {
		t.Errorf("systemd-analyze verify of slot b (systemd %d):\n%s\nunit:\n%s", version, out, unitB)
	}
	textB := strings.Replace(string(unitB), "EnvironmentFile=/etc/gatehouse/gateway/b/%i.env\n", "EnvironmentFile=/etc/gatehouse/gateway/%i.env\n", 1)
	if diff := lineDiff(text, textB); len(diff) != 3 { // the header and Description= only
		t.Errorf("slot b's unit differs from slot a's in more than its environment file, header and description: %q", diff)
	}
	if _, err := UnitFile(opts, "c"); err == nil {
		t.Error("slot c was accepted")
	}
	// The check sees what is wrong (systemd only warns, exit status 0).
	bad := strings.Replace(text, "ProtectSystem=strict", "ProtectSystem=very", 1)
	if out := verify([]byte(bad)); !strings.Contains(out, "very") {
		t.Errorf("a bad unit passed: %q", out)
	}

	// From systemd 254 on, systemd's own restart delay grows too.
	opts.SystemdVersion = 254
	if u, _ := UnitFile(opts, SlotA); !strings.Contains(string(u), "RestartSteps=9\nRestartMaxDelaySec=30s\n") {
		t.Errorf("no RestartSteps for systemd 254:\n%s", u)
	}
	opts.SystemdVersion = 0
	if u, _ := UnitFile(opts, SlotA); strings.Contains(string(u), "RestartSteps") {
		t.Error("RestartSteps for an old systemd")
	}
	opts.EnvDir = "/etc/with space"
	if _, err := UnitFile(opts, SlotA); err == nil {
		t.Error("an environment dir with a space was accepted")
	}
	opts.EnvDir, opts.User = "", "Bad User"
	if _, err := UnitFile(opts, SlotA); err == nil {
		t.Error("a bad user name was accepted")
	}
}

// lineDiff returns the lines of a and b that differ, position by position.
func lineDiff(a, b string) []string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := range max(len(la), len(lb)) {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			out = append(out, x+" | "+y)
		}
	}
	return out
}

func TestEnvFile(t *testing.T) {
	sp := Spec{Name: "web-1", Binary: "/usr/bin/gatehouse", Args: []string{"gateway", "--instance", "web-1", "--domain-key", `ed25519:a$b"c\d`},
		Env: []string{"GATEHOUSE_INSTANCE_SECRET=s3cr$t"}}
	b, err := EnvFile(sp)
	if err != nil {
		t.Fatal(err)
	}
	want := "# gatehouse gateway web-1: written by the node manager; do not edit.\n" +
		"# spec-hash: " + sp.Hash() + "\n" +
		`GATEHOUSE_GATEWAY_ARGS="gateway --instance web-1 --domain-key ed25519:a\$b\"c\\d"` + "\n" +
		`GATEHOUSE_INSTANCE_SECRET="s3cr\$t"` + "\n"
	if string(b) != want {
		t.Errorf("env file:\n%s\nwant:\n%s", b, want)
	}
	if envFileHash(b) != sp.Hash() {
		t.Error("hash not read back")
	}
	for _, bad := range []Spec{
		{Name: "a", Binary: "/x", Args: []string{"gateway", "--config", "my file.yaml"}},
		{Name: "a", Binary: "/x", Args: []string{""}},
		{Name: "a", Binary: "/x", Env: []string{"A=line\nbreak"}},
		{Name: "a", Binary: "/x", Env: []string{"BAD-NAME=1"}},
		{Name: "a", Binary: "/x", Env: []string{ArgsVar + "=--evil"}},
	} {
		if _, err := EnvFile(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("EnvFile(%q, %q) = %v, want ErrInvalid", bad.Args, bad.Env, err)
		}
	}
}

// fakeSystemctl plays systemctl for the driver: units start, stop, and
// the test changes their state as systemd would.
type fakeSystemctl struct {
	mu      sync.Mutex
	calls   []string
	units   map[string]*unitState
	started map[string]uint64 // ExecMainStartTimestampMonotonic
	nextPID int
	// failStart makes the next restart of a unit fail its start job:
	// startExits, its process ran and exited before systemd saw it
	// start (systemd restarts it: Restart=on-failure); startRefused,
	// nothing ran.
	failStart map[string]string
}

const (
	startExits   = "exits"
	startRefused = "refused"
)

func newFakeSystemctl() *fakeSystemctl {
	return &fakeSystemctl{units: map[string]*unitState{}, started: map[string]uint64{}, nextPID: 1000, failStart: map[string]string{}}
}

func monoNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano() / 1000)
}

func (f *fakeSystemctl) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "systemctl" {
		return nil, fmt.Errorf("ran %s", name)
	}
	unit := args[len(args)-1]
	if args[0] != "show" {
		f.calls = append(f.calls, strings.Join(args, " "))
	}
	u := f.units[unit]
	if u == nil && strings.HasPrefix(unit, "gatehouse-gateway") {
		u = &unitState{ActiveState: "inactive", SubState: "dead", Result: "success"}
		f.units[unit] = u
	}
	switch args[0] {
	case "--version":
		return []byte("systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT\n"), nil
	case "daemon-reload", "enable", "disable":
	case "reset-failed":
		if u != nil && u.ActiveState == "failed" {
			u.ActiveState, u.SubState = "inactive", "dead"
		}
	case "restart":
		how := f.failStart[unit]
		delete(f.failStart, unit)
		failed := fmt.Errorf("exit status 1: Job for %s failed because the control process exited with error code.", unit)
		switch how {
		case startRefused:
			return nil, failed
		case startExits:
			f.nextPID++
			f.started[unit] = monoNow()
			*u = unitState{ActiveState: "activating", SubState: "auto-restart", Result: "exit-code", ExitCode: "1", ExitStatus: "3", NRestarts: u.NRestarts}
			return nil, failed
		}
		f.nextPID++
		f.started[unit] = monoNow()
		*u = unitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: f.nextPID, ExitCode: "0", ExitStatus: "0"}
	case "stop":
		// As systemd: a failed unit stays failed until reset-failed.
		if u.ActiveState != "failed" {
			u.ActiveState, u.SubState, u.MainPID, u.ExitCode, u.ExitStatus = "inactive", "dead", 0, "1", "0"
		}
	case "show":
		return fmt.Appendf(nil, "ActiveState=%s\nSubState=%s\nResult=%s\nMainPID=%d\nNRestarts=%d\nExecMainStartTimestampMonotonic=%d\nExecMainCode=%s\nExecMainStatus=%s\n",
			u.ActiveState, u.SubState, u.Result, u.MainPID, u.NRestarts, f.started[unit], u.ExitCode, u.ExitStatus), nil
	default:
		return nil, fmt.Errorf("unexpected systemctl %q", args)
	}
	return nil, nil
}

func (f *fakeSystemctl) set(name string, change func(u *unitState)) {
	f.mu.Lock()
	change(f.units[Unit(name)])
	f.mu.Unlock()
}

func (f *fakeSystemctl) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// The systemd driver under the supervisor: what it writes, the systemctl
// commands it runs, and how it follows systemd's own restarts, a
// start-limit-hit, flag changes, adoption and removal.
func TestSystemdDriver(t *testing.T) {
	root := t.TempDir()
	fake := newFakeSystemctl()
	sopts := SystemdOptions{
		Binary:       fakegw,
		UnitDir:      filepath.Join(root, "units"),
		EnvDir:       filepath.Join(root, "env"),
		Runner:       fake,
		PollInterval: 10 * time.Millisecond,
	}
	rec := &recorder{}
	newSup := func() *Supervisor {
		drv, err := NewSystemd(sopts)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(context.Background(), Options{Driver: drv, OnChange: rec.add,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	h := &harness{t: t, sup: newSup(), rec: rec}
	sp := Spec{Name: "web-1", Group: "g", Binary: fakegw, Args: []string{"gateway", "--instance", "web-1"},
		Env: []string{"GATEHOUSE_INSTANCE_SECRET=s"}}
	unit := Unit("web-1")

	h.reconcile(sp)
	st := h.running("web-1")
	if st.PID != 1001 {
		t.Errorf("pid %d", st.PID)
	}
	if got, want := fake.takeCalls(), []string{"--version", "daemon-reload", "reset-failed " + unit, "enable --no-reload " + unit, "restart " + unit}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(sopts.UnitDir, UnitName)); err != nil {
		t.Error(err)
	}
	envPath := filepath.Join(sopts.EnvDir, "web-1.env")
	if fi, err := os.Stat(envPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("env file: %v %v", fi, err)
	}
	// --takeover on a first start too: it takes nothing when no gateway of
	// the instance runs.
	if b, _ := os.ReadFile(envPath); !strings.Contains(string(b), `GATEHOUSE_GATEWAY_ARGS="gateway --instance web-1 --takeover --takeover-ready-file /var/lib/gatehouse-gateway/web-1/takeover.ready"`) {
		t.Errorf("env file:\n%s", b)
	}

	// systemd restarts a crashed gateway by itself: a new pid, counted.
	fake.set("web-1", func(u *unitState) { u.MainPID, u.NRestarts = 1500, 2 })
	h.wait("systemd's restarts", func() bool {
		st, _ := h.sup.State("web-1")
		return st.PID == 1500 && st.Restarts == 2
	})

	// systemd gives up (start-limit-hit): crash loop, then the
	// supervisor's own retry.
	fake.set("web-1", func(u *unitState) {
		u.ActiveState, u.SubState, u.Result, u.MainPID, u.ExitCode, u.ExitStatus = "failed", "failed", "start-limit-hit", 0, "1", "1"
	})
	h.wait("a retry after the start limit", func() bool {
		st, _ := h.sup.State("web-1")
		return st.Process == StateCrashLoop && st.PID != 0 && st.PID != 1500 // running, not yet for MinRunTime
	})
	if !slices.ContainsFunc(rec.of("web-1"), func(s State) bool {
		return s.Process == StateCrashLoop && s.PID == 0 && strings.Contains(s.LastExit, "start-limit-hit")
	}) {
		t.Errorf("no crash-loop state: %+v", rec.of("web-1"))
	}
	if st, _ := h.sup.State("web-1"); st.Restarts != 3 {
		t.Errorf("restarts %d, want 2 by systemd + 1", st.Restarts)
	}
	fake.takeCalls()

	// New flags: stop, new env file, start.
	sp2 := sp
	sp2.Args = []string{"gateway", "--instance", "web-1", "--listen", ":9000"}
	h.reconcile(sp2)
	if got, want := fake.takeCalls(), []string{"stop " + unit, "reset-failed " + unit, "enable --no-reload " + unit, "restart " + unit}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(envPath); envFileHash(b) != sp2.Hash() {
		t.Errorf("env file not rewritten:\n%s", b)
	}
	running := h.running("web-1")

	// A new node manager adopts the active unit and does not restart it.
	h.sup.Close()
	h.sup = newSup()
	if st, ok := h.sup.State("web-1"); !ok || !st.Adopted || st.PID != running.PID || st.SpecHash != sp2.Hash() {
		t.Errorf("adopted: %+v", st)
	}
	h.reconcile(sp2)
	if got := fake.takeCalls(); len(got) != 0 {
		t.Errorf("adoption ran %q", got)
	}

	// Not desired any more: stopped and forgotten.
	h.reconcile()
	unitB := SlotUnit(SlotB, "web-1")
	if got, want := fake.takeCalls(), []string{"stop " + unit, "disable --no-reload " + unit + " " + unitB, "reset-failed " + unit + " " + unitB}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	if _, err := os.Stat(envPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("env file kept: %v", err)
	}

	// A spec for a binary that is not there fails to start, and says so.
	bad := sp
	bad.Binary = "/usr/bin/other"
	h.reconcile(bad)
	h.wait("start error", func() bool {
		st, _ := h.sup.State("web-1")
		return strings.Contains(st.LastError, "binary: open /usr/bin/other")
	})
	h.reconcile()
}

// The systemd driver as a Replacer, with the fake systemctl: new flags
// start the other slot's unit with --takeover, which is the instance's
// once it wrote that it serves and the old unit has stopped; a new node
// manager adopts the recorded slot, or the other one when only it runs;
// a replacement never ready is stopped and the old unit stays the
// instance's.
func TestSystemdReplace(t *testing.T) {
	root := t.TempDir()
	fake := newFakeSystemctl()
	sopts := SystemdOptions{
		Binary:       fakegw,
		UnitDir:      filepath.Join(root, "units"),
		EnvDir:       filepath.Join(root, "env"),
		StateDir:     filepath.Join(root, "state"),
		Runner:       fake,
		PollInterval: 10 * time.Millisecond,
	}
	newSup := func() *Supervisor {
		drv, err := NewSystemd(sopts)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(context.Background(), Options{Driver: drv, ZeroDowntime: true, ReadyTimeout: 300 * time.Millisecond, DrainTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	h := &harness{t: t, sup: newSup(), rec: &recorder{}}
	sp := Spec{Name: "web-1", Binary: fakegw, Args: []string{"gateway", "--instance", "web-1", "--data-dir", SystemdDataDir("web-1")}}
	unitA, unitB := SlotUnit(SlotA, "web-1"), SlotUnit(SlotB, "web-1")
	h.reconcile(sp)
	old := h.running("web-1")
	if _, err := os.Stat(filepath.Join(sopts.UnitDir, UnitNameB)); err != nil {
		t.Errorf("slot b's template not installed: %v", err)
	}
	fake.takeCalls()
	readyFile := filepath.Join(sopts.StateDir, "web-1", TakeoverReadyFileName)
	if err := os.MkdirAll(filepath.Dir(readyFile), 0o700); err != nil {
		t.Fatal(err)
	}

	// reconcileLater reconciles spec in the background.
	reconcileLater := func(spec Spec) chan error {
		errc := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errc <- h.sup.Reconcile(ctx, []Spec{spec})
		}()
		return errc
	}
	// replace reconciles spec in the background and plays the gateways:
	// the new unit writes that it serves (when serve), the old one exits.
	replace := func(spec Spec, from, to string, serve bool) error {
		t.Helper()
		errc := reconcileLater(spec)
		if !serve {
			return <-errc
		}
		var pid int
		waitfor.Cond(t, 10*time.Second, to+" started", func() (bool, string) {
			fake.mu.Lock()
			defer fake.mu.Unlock()
			u := fake.units[to]
			if u == nil || u.ActiveState != "active" {
				return false, fmt.Sprint(u)
			}
			pid = u.MainPID
			return true, ""
		})
		if err := os.WriteFile(readyFile, fmt.Appendf(nil, `{"pid":"%d","replaced_pid":"%d"}`, pid, old.PID), 0o644); err != nil {
			t.Fatal(err)
		}
		fake.mu.Lock()
		u := fake.units[from]
		u.ActiveState, u.SubState, u.MainPID = "inactive", "dead", 0
		fake.mu.Unlock()
		return <-errc
	}

	sp2 := sp
	sp2.Args = append(slices.Clone(sp.Args), "--flag", "2")
	if err := replace(sp2, unitA, unitB, true); err != nil {
		t.Fatal(err)
	}
	st, _ := h.sup.State("web-1")
	if st.PID == old.PID || st.Process != StateRunning || st.SpecHash != sp2.Hash() || st.LastError != "" {
		t.Errorf("after the replacement: %+v, was pid %d", st, old.PID)
	}
	if got, want := fake.takeCalls(), []string{"reset-failed " + unitB, "restart " + unitB, "enable --no-reload " + unitB, "disable --no-reload " + unitA}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	envB, _ := os.ReadFile(filepath.Join(sopts.EnvDir, "b", "web-1.env"))
	if !strings.Contains(string(envB), "--flag 2 --takeover --takeover-ready-file /var/lib/gatehouse-gateway/web-1/takeover.ready\"") || envFileHash(envB) != sp2.Hash() {
		t.Errorf("slot b's environment file:\n%s", envB)
	}
	if envA, _ := os.ReadFile(filepath.Join(sopts.EnvDir, "web-1.env")); envFileHash(envA) != sp.Hash() {
		t.Errorf("slot a's environment file changed:\n%s", envA)
	}
	if b, _ := os.ReadFile(filepath.Join(sopts.EnvDir, "web-1.slot")); string(b) != "{\n  \"schema\": 1,\n  \"slot\": \"b\"\n}\n" {
		t.Errorf("slot record %q", b)
	}

	// A new node manager adopts slot b's unit, with slot b's spec.
	h.sup.Close()
	h.sup = newSup()
	if st, ok := h.sup.State("web-1"); !ok || !st.Adopted || st.PID != h.running("web-1").PID || st.SpecHash != sp2.Hash() {
		t.Errorf("adopted: %+v", st)
	}
	h.reconcile(sp2)
	if got := fake.takeCalls(); len(got) != 0 {
		t.Errorf("adoption ran %q", got)
	}

	// A restart goes back to slot a (the new driver installs the units
	// first, asking systemd's version; they are unchanged).
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		errc <- h.sup.Restart(ctx, "web-1")
	}()
	var aPID int
	waitfor.Cond(t, 10*time.Second, unitA+" started again", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		aPID = fake.units[unitA].MainPID
		return fake.units[unitA].ActiveState == "active", fmt.Sprint(fake.units[unitA])
	})
	if err := os.WriteFile(readyFile, fmt.Appendf(nil, `{"pid":"%d"}`, aPID), 0o644); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	fake.units[unitB].ActiveState, fake.units[unitB].MainPID = "inactive", 0
	fake.mu.Unlock()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st, _ := h.sup.State("web-1"); st.PID != aPID {
		t.Errorf("after the restart pid %d, want slot a's %d", st.PID, aPID)
	}
	if got, want := fake.takeCalls(), []string{"--version", "reset-failed " + unitA, "restart " + unitA, "enable --no-reload " + unitA, "disable --no-reload " + unitB}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}

	// A replacement that never says it serves: stopped after
	// ReadyTimeout, slot a's unit serves on and stays the instance's.
	sp3 := sp
	sp3.Args = append(slices.Clone(sp.Args), "--flag", "3")
	err := replace(sp3, unitA, unitB, false)
	if err == nil || !strings.Contains(err.Error(), "was not ready within 300ms") {
		t.Fatalf("a replacement never ready: %v", err)
	}
	if st, _ := h.sup.State("web-1"); st.PID != aPID || st.Process != StateRunning || !strings.Contains(st.LastError, "was not ready") {
		t.Errorf("after a failed replacement: %+v, want pid %d running with the error", st, aPID)
	}
	if got, want := fake.takeCalls(), []string{"reset-failed " + unitB, "restart " + unitB, "stop " + unitB}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(sopts.EnvDir, "web-1.slot")); !strings.Contains(string(b), `"slot": "a"`) {
		t.Errorf("slot record %q", b)
	}

	// A replacement that exits at once: its unit, which systemd keeps as
	// failed, is stopped and reset; slot a's unit serves on.
	sp4 := sp
	sp4.Args = append(slices.Clone(sp.Args), "--flag", "4")
	errc = reconcileLater(sp4)
	waitfor.Cond(t, 10*time.Second, unitB+" started", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		u := fake.units[unitB]
		if u == nil || u.ActiveState != "active" {
			return false, fmt.Sprint(u)
		}
		*u = unitState{ActiveState: "failed", SubState: "failed", Result: "exit-code", ExitCode: "1", ExitStatus: "3"}
		return true, ""
	})
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("a replacement that exits: %v", err)
	}
	if st, _ := h.sup.State("web-1"); st.PID != aPID || st.Process != StateRunning {
		t.Errorf("after a replacement that exited: %+v, want pid %d running", st, aPID)
	}
	if got, want := fake.takeCalls(), []string{"reset-failed " + unitB, "restart " + unitB, "stop " + unitB, "reset-failed " + unitB}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	fake.mu.Lock()
	if u := fake.units[unitB]; u.ActiveState != "inactive" {
		t.Errorf("%s after the failed replacement: %+v, want inactive", unitB, u)
	}
	fake.mu.Unlock()

	// A replacement that exits before systemd saw it start (the start
	// job fails; systemd restarts it until its start limit): a process
	// that exited, not an error of starting it; slot a's unit serves on.
	sp5 := sp
	sp5.Args = append(slices.Clone(sp.Args), "--flag", "5")
	fake.mu.Lock()
	fake.failStart[unitB] = startExits
	fake.mu.Unlock()
	errc = reconcileLater(sp5)
	waitfor.Cond(t, 10*time.Second, unitB+" restarting by itself", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		u := fake.units[unitB]
		if u == nil || u.SubState != "auto-restart" {
			return false, fmt.Sprint(u)
		}
		*u = unitState{ActiveState: "failed", SubState: "failed", Result: "start-limit-hit", ExitCode: "1", ExitStatus: "3"}
		return true, ""
	})
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), fmt.Sprintf("pid %d serves on", aPID)) {
		t.Fatalf("a replacement that exits as it starts: %v", err)
	}
	if st, _ := h.sup.State("web-1"); st.PID != aPID || st.Process != StateRunning {
		t.Errorf("after a replacement that exited as it started: %+v, want pid %d running", st, aPID)
	}
	if got, want := fake.takeCalls(), []string{"reset-failed " + unitB, "restart " + unitB, "stop " + unitB, "reset-failed " + unitB}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}

	// A replacement systemd refuses to start (nothing ran): the error
	// says the old process serves on, and the same spec is not tried
	// again at once.
	sp6 := sp
	sp6.Args = append(slices.Clone(sp.Args), "--flag", "6")
	fake.mu.Lock()
	fake.failStart[unitB] = startRefused
	fake.mu.Unlock()
	for _, what := range []string{"refused", "not tried again"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := h.sup.Reconcile(ctx, []Spec{sp6})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "serves on") || !strings.Contains(err.Error(), "failed because the control process exited") {
			t.Fatalf("%s: a replacement systemd refuses: %v", what, err)
		}
	}
	if st, _ := h.sup.State("web-1"); st.PID != aPID || st.Process != StateRunning || !strings.Contains(st.LastError, "serves on") {
		t.Errorf("after a replacement systemd refused: %+v, want pid %d running with the error", st, aPID)
	}
	if got, want := fake.takeCalls(), []string{"reset-failed " + unitB, "restart " + unitB}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q (tried once)", got, want)
	}

	// The node manager went away during a replacement that then finished:
	// the recorded slot's unit has stopped, the other's runs; it is
	// adopted and recorded.
	h.sup.Close()
	fake.mu.Lock()
	fake.units[unitA].ActiveState, fake.units[unitA].MainPID = "inactive", 0
	fake.units[unitB].ActiveState, fake.units[unitB].MainPID = "active", 4242
	fake.mu.Unlock()
	h.sup = newSup()
	if st, ok := h.sup.State("web-1"); !ok || !st.Adopted || st.PID != 4242 {
		t.Errorf("adopted after an unwatched replacement: %+v, want slot b's pid 4242", st)
	}
	if got, want := fake.takeCalls(), []string{"enable --no-reload " + unitB, "disable --no-reload " + unitA}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(sopts.EnvDir, "web-1.slot")); !strings.Contains(string(b), `"slot": "b"`) {
		t.Errorf("slot record %q", b)
	}

	// Both units run and the ready file names slot a's process: it took
	// over (a start after the adopted unit ended, say) and slot b's
	// drains; slot a is adopted and recorded.
	h.sup.Close()
	fake.mu.Lock()
	fake.units[unitA].ActiveState, fake.units[unitA].MainPID = "active", 4343
	fake.mu.Unlock()
	if err := os.WriteFile(readyFile, []byte(`{"pid":"4343","replaced_pid":"4242"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	h.sup = newSup()
	if st, ok := h.sup.State("web-1"); !ok || st.PID != 4343 {
		t.Errorf("adopted with both units running, slot a's ready: %+v, want pid 4343", st)
	}
	if got, want := fake.takeCalls(), []string{"enable --no-reload " + unitA, "disable --no-reload " + unitB}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	// Both run and the ready file names another process: the recorded
	// slot (a) is adopted, the other may be a replacement that fails yet.
	h.sup.Close()
	if err := os.WriteFile(readyFile, []byte(`{"pid":"1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	h.sup = newSup()
	if st, ok := h.sup.State("web-1"); !ok || st.PID != 4343 {
		t.Errorf("adopted with both units running, none ready: %+v, want the recorded slot's pid 4343", st)
	}
	if got := fake.takeCalls(); len(got) != 0 {
		t.Errorf("adoption ran %q", got)
	}

	// A slot record of another schema is refused, naming the file.
	if err := os.WriteFile(filepath.Join(sopts.EnvDir, "web-1.slot"), []byte(`{"schema":2,"slot":"b"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	drv, _ := NewSystemd(sopts)
	if _, err := drv.Adopt(context.Background()); err == nil || !strings.Contains(err.Error(), "web-1.slot: schema 2") {
		t.Errorf("adopt with a slot record of schema 2: %v", err)
	}
}

// A spec with another binary than the template's (a release): its unit
// runs a copy of it, readable by the gateway's user, named in a drop-in;
// back on the template's binary, the drop-in and the copy go.
func TestSystemdReleaseBinary(t *testing.T) {
	root := t.TempDir()
	fake := newFakeSystemctl()
	sopts := SystemdOptions{
		Binary:       fakegw,
		UnitDir:      filepath.Join(root, "units"),
		EnvDir:       filepath.Join(root, "env"),
		ReleaseDir:   filepath.Join(root, "releases"),
		Runner:       fake,
		PollInterval: 10 * time.Millisecond,
	}
	drv, err := NewSystemd(sopts)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := New(context.Background(), Options{Driver: drv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Close() })
	h := &harness{t: t, sup: sup, rec: &recorder{}}
	release := filepath.Join(root, "node", "releases", "1.4.0-abcd", "gatehouse")
	if err := os.MkdirAll(filepath.Dir(release), 0o700); err != nil {
		t.Fatal(err)
	}
	content := []byte("#!/bin/sh\necho release 1.4.0\n")
	if err := os.WriteFile(release, content, 0o755); err != nil {
		t.Fatal(err)
	}
	sp := Spec{Name: "web-1", Binary: release, Args: []string{"gateway", "--instance", "web-1"}}
	unit := Unit("web-1")

	h.reconcile(sp)
	h.running("web-1")
	if got, want := fake.takeCalls(), []string{"--version", "daemon-reload", "daemon-reload", "reset-failed " + unit, "enable --no-reload " + unit, "restart " + unit}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	copies, _ := filepath.Glob(filepath.Join(sopts.ReleaseDir, "*", "gatehouse"))
	if len(copies) != 1 {
		t.Fatalf("copies of the release: %q", copies)
	}
	if b, err := os.ReadFile(copies[0]); err != nil || !bytes.Equal(b, content) {
		t.Errorf("the copy holds %q (%v)", b, err)
	}
	if fi, err := os.Stat(copies[0]); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the copy: %v %v", fi, err)
	}
	dropIn := filepath.Join(sopts.UnitDir, unit+".d", ReleaseDropIn)
	b, err := os.ReadFile(dropIn)
	if err != nil || !strings.Contains(string(b), "[Service]\nExecStart=\nExecStart="+copies[0]+" $"+ArgsVar+"\n") {
		t.Errorf("drop-in (%v):\n%s", err, b)
	}

	// Started again on the same release: nothing to reload.
	if err := sup.Restart(context.Background(), "web-1"); err != nil {
		t.Fatal(err)
	}
	if got, want := fake.takeCalls(), []string{"stop " + unit, "reset-failed " + unit, "enable --no-reload " + unit, "restart " + unit}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}

	// Back on the template's binary.
	sp.Binary = fakegw
	h.reconcile(sp)
	if got, want := fake.takeCalls(), []string{"stop " + unit, "daemon-reload", "reset-failed " + unit, "enable --no-reload " + unit, "restart " + unit}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls %q, want %q", got, want)
	}
	if _, err := os.Stat(dropIn); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("drop-in kept: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(copies[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unused copy kept: %v", err)
	}

	// A path systemd would split is refused, naming it.
	sp.Binary = "/opt/my release/gatehouse"
	h.reconcile(sp)
	h.wait("start error", func() bool {
		st, _ := h.sup.State("web-1")
		return strings.Contains(st.LastError, `binary "/opt/my release/gatehouse" holds a character systemd would interpret`)
	})
}
