package supervisor

import (
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
}

func newFakeSystemctl() *fakeSystemctl {
	return &fakeSystemctl{units: map[string]*unitState{}, started: map[string]uint64{}, nextPID: 1000}
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
	case "daemon-reload", "reset-failed", "enable", "disable":
	case "restart":
		f.nextPID++
		f.started[unit] = monoNow()
		*u = unitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: f.nextPID, ExitCode: "0", ExitStatus: "0"}
	case "stop":
		u.ActiveState, u.SubState, u.MainPID, u.ExitCode, u.ExitStatus = "inactive", "dead", 0, "1", "0"
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
	if b, _ := os.ReadFile(envPath); !strings.Contains(string(b), `GATEHOUSE_GATEWAY_ARGS="gateway --instance web-1"`) {
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

	// A spec for another binary is refused, and shown.
	bad := sp
	bad.Binary = "/usr/bin/other"
	h.reconcile(bad)
	h.wait("start error", func() bool {
		st, _ := h.sup.State("web-1")
		return strings.Contains(st.LastError, "is not the unit's")
	})
	h.reconcile()
}
