package nspawn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RootfsVersion keys the cached root file system: bump it whenever
// rootfsPackages or the way the root is made changes, so that every
// machine builds the new one.
const RootfsVersion = "1"

// rootfsPackages are added to debootstrap's minbase: systemd to boot as
// PID 1 (with systemctl, journalctl and systemd-analyze), dbus for
// systemd-logind, so that a healthy boot ends "running", not "degraded".
const rootfsPackages = "systemd,dbus"

// suite is the Debian release booted: the one CI and the test machines run.
const suite = "bookworm"

// RequireEnv names the environment variable that makes a machine unable
// to boot a container a failure rather than a skip: CI sets it.
const RequireEnv = "GATEHOUSE_TEST_REQUIRE_NSPAWN"

// ErrUnavailable says this machine cannot boot a container: not root, or
// a needed binary is missing.
var ErrUnavailable = errors.New("cannot boot a systemd container here")

// CacheDir is where the root file system is cached:
// $GATEHOUSE_TEST_CACHE, else /var/cache/gatehouse-test.
func CacheDir() string {
	if d := os.Getenv("GATEHOUSE_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/gatehouse-test"
}

func mirror() string {
	if m := os.Getenv("GATEHOUSE_TEST_DEBIAN_MIRROR"); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

// Check says whether this machine can boot a container: root, and
// debootstrap, systemd-nspawn and nsenter on PATH.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: systemd-nspawn needs root", ErrUnavailable)
	}
	for _, bin := range []struct{ name, pkg string }{
		{"debootstrap", "debootstrap"}, {"systemd-nspawn", "systemd-container"}, {"nsenter", "util-linux"},
	} {
		if _, err := exec.LookPath(bin.name); err != nil {
			return fmt.Errorf("%w: %s not found (apt-get install %s)", ErrUnavailable, bin.name, bin.pkg)
		}
	}
	return nil
}

// Rootfs returns the cached Debian root with systemd, building it first
// when this machine has none (debootstrap: a few minutes). logf reports
// a build.
func Rootfs(ctx context.Context, logf func(format string, args ...any)) (string, error) {
	cache := CacheDir()
	final := filepath.Join(cache, "debian-rootfs-"+RootfsVersion)
	if complete(final) {
		return final, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	defer lock.Close()
	// Another test process may be building it: wait for it, then use its
	// build.
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("rootfs cache: lock: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if complete(final) {
		return final, nil
	}
	// What an interrupted build left (the lock says no build runs now).
	stale, _ := filepath.Glob(filepath.Join(cache, "debian-rootfs-*.tmp-*"))
	for _, dir := range stale {
		os.RemoveAll(dir)
	}
	tmp, err := os.MkdirTemp(cache, "debian-rootfs-"+RootfsVersion+".tmp-")
	if err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	// MkdirTemp made it 0700: the container's / must let its users (dbus,
	// the services' own) through.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	began := time.Now()
	logf("building the Debian %s root for systemd containers in %s (once per machine)", suite, final)
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+rootfsPackages, suite, tmp, mirror())
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("debootstrap %s %s: %w\n%s", suite, mirror(), err, out.String())
	}
	if !complete(tmp) {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("debootstrap %s: no systemd in the root it made\n%s", suite, out.String())
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	logf("built the Debian root in %s", time.Since(began).Round(time.Second))
	return final, nil
}

// complete says whether root is a finished build: only those are renamed
// into place, and they hold systemd.
func complete(root string) bool {
	fi, err := os.Stat(filepath.Join(root, "usr/lib/systemd/systemd"))
	return err == nil && fi.Mode().IsRegular()
}

// tailBuffer keeps the last 16 KiB written to it: debootstrap's output is
// long, and only its end says what went wrong.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if n := len(t.b) - 16<<10; n > 0 {
		t.b = append(t.b[:0], t.b[n:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Machine is a booted container.
type Machine struct {
	// Name is the container's machine name (also its hostname).
	Name string
	// Dir is its root directory on the host.
	Dir string

	cmd     *exec.Cmd
	pid1    int // the container's PID 1, as the host numbers it
	console tailBuffer
	done    chan struct{}
	waitErr error
}

// Boot copies root into dir (which must exist and be empty) and boots it
// with systemd-nspawn; it returns once systemd says the system is up.
func Boot(ctx context.Context, root, dir string) (*Machine, error) {
	var rnd [4]byte
	rand.Read(rnd[:])
	m := &Machine{Name: "gatehouse-" + hex.EncodeToString(rnd[:]), Dir: dir}
	if out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", root+"/.", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy the root: %w: %s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := m.start(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// start boots the container's directory and waits until it is up.
func (m *Machine) start(ctx context.Context) error {
	m.done, m.pid1, m.waitErr = make(chan struct{}), 0, nil
	m.cmd = exec.Command("systemd-nspawn", "--quiet", "--boot", "--directory="+m.Dir, "--machine="+m.Name,
		// The host's PID 1 need not be systemd: no machined, no scope unit.
		"--register=no", "--keep-unit",
		"--link-journal=no", "--console=read-only")
	m.cmd.Stdout, m.cmd.Stderr = &m.console, &m.console
	// A test process that dies takes the container down with it: nspawn
	// halts it on SIGTERM.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("systemd-nspawn: %w", err)
	}
	done := m.done
	go func() {
		m.waitErr = m.cmd.Wait()
		close(done)
	}()
	if err := m.waitBooted(ctx); err != nil {
		m.Shutdown(10 * time.Second)
		return err
	}
	return nil
}

// Reboot reboots the container: its systemd stops every unit and nspawn
// exits (the container asked for a reboot); then the same directory, with
// everything written to it, boots again.
func (m *Machine) Reboot(ctx context.Context) error {
	// The command may be cut short by the reboot itself.
	m.Run(ctx, "systemctl", "reboot")
	select {
	case <-m.done:
	case <-time.After(time.Minute):
		return fmt.Errorf("container %s did not go down for its reboot\n%s", m.Name, m.console.String())
	}
	return m.start(ctx)
}

func (m *Machine) waitBooted(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for m.pid1 == 0 {
		select {
		case <-m.done:
			return fmt.Errorf("systemd-nspawn exited at boot: %v\n%s", m.waitErr, m.console.String())
		case <-ctx.Done():
			return fmt.Errorf("the container's PID 1 never appeared: %w\n%s", ctx.Err(), m.console.String())
		case <-time.After(20 * time.Millisecond):
		}
		m.pid1 = containerInit(m.cmd.Process.Pid)
	}
	// The init found may still be nspawn's child, before it execs systemd.
	for {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", m.pid1)); string(comm) == "systemd\n" {
			break
		}
		select {
		case <-m.done:
			return fmt.Errorf("systemd-nspawn exited at boot: %v\n%s", m.waitErr, m.console.String())
		case <-ctx.Done():
			return fmt.Errorf("systemd never ran as the container's PID 1: %w\n%s", ctx.Err(), m.console.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// "degraded" (exit status 1) is up too, with a unit failed: the tests
	// see it in what they check.
	for {
		out, err := m.Run(ctx, "systemctl", "is-system-running", "--wait")
		switch state := strings.TrimSpace(string(out)); state {
		case "running", "degraded":
			return nil
		case "", "offline":
			// systemd has not opened its socket yet.
		default:
			return fmt.Errorf("the container did not boot: systemctl is-system-running says %q (%v)\n%s", state, err, m.console.String())
		}
		select {
		case <-m.done:
			return fmt.Errorf("systemd-nspawn exited at boot: %v\n%s", m.waitErr, m.console.String())
		case <-ctx.Done():
			jobs, _ := m.Run(context.Background(), "systemctl", "list-jobs", "--no-legend")
			return fmt.Errorf("the container did not finish booting: %w; jobs left:\n%s\n%s", ctx.Err(), jobs, m.console.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// containerInit finds the container's PID 1 among the descendants of
// nspawn: the process whose innermost pid is 1.
func containerInit(nspawn int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == nspawn {
			continue
		}
		ppid, nspid := procStatus(pid)
		if len(nspid) < 2 || nspid[len(nspid)-1] != "1" {
			continue
		}
		// nspawn forks its child, which forks the container's init.
		for range 3 {
			if ppid == nspawn {
				return pid
			}
			ppid, _ = procStatus(ppid)
		}
	}
	return 0
}

func procStatus(pid int) (ppid int, nspid []string) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "PPid":
			ppid, _ = strconv.Atoi(strings.TrimSpace(v))
		case "NSpid":
			nspid = strings.Fields(v)
		}
	}
	return ppid, nspid
}

// PID1 is the container's PID 1 as the host numbers it.
func (m *Machine) PID1() int { return m.pid1 }

// Command makes a command that runs inside the container, in every
// namespace of its PID 1, as root, with a plain environment.
func (m *Machine) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(m.pid1), "--all", "--", name}, args...)...)
	// Killing nsenter on ctx's end leaves the command it forked into the
	// container's pid namespace holding the output pipes: stop waiting.
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0"}
	return cmd
}

// Run runs a command inside the container and returns its standard
// output; an error carries its standard error.
func (m *Machine) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := m.Command(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("in %s: %s %s: %w: %s", m.Name, name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Path is the host's path of path inside the container.
func (m *Machine) Path(path string) string { return filepath.Join(m.Dir, path) }

// CopyIn copies the host file src to dst inside the container, with mode.
func (m *Machine) CopyIn(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	target := m.Path(dst)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s into %s: %w", src, m.Name, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(target, mode)
}

// Console is the end of what the container wrote on its console.
func (m *Machine) Console() string { return m.console.String() }

// Shutdown halts the container (nspawn forwards SIGTERM to its systemd as
// a halt request) and waits up to timeout for it, then kills it.
func (m *Machine) Shutdown(timeout time.Duration) error {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
		return nil
	case <-time.After(timeout):
	}
	// SIGKILL to the PID 1 of a pid namespace ends every process in it.
	if m.pid1 != 0 {
		syscall.Kill(m.pid1, syscall.SIGKILL)
	}
	m.cmd.Process.Kill()
	<-m.done
	return fmt.Errorf("container %s did not halt within %s: killed", m.Name, timeout)
}

// Start boots a container for t, in a directory of t's, and halts it when
// t ends. It skips t where this machine cannot boot one (saying why),
// unless RequireEnv is set.
func Start(t testing.TB) *Machine {
	t.Helper()
	unavailable := func(err error) {
		t.Helper()
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%v (and %s is set)", err, RequireEnv)
		}
		t.Skip(err)
	}
	if err := Check(); err != nil {
		unavailable(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root, err := Rootfs(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	m, err := Boot(ctx, root, dir)
	if err != nil {
		// The kernel or the sandbox refusing the container looks like any
		// other failure to boot: say it, and skip outside CI.
		unavailable(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	t.Logf("booted container %s (pid 1 = host pid %d) in %s", m.Name, m.pid1, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console of %s:\n%s", m.Name, m.Console())
		}
		if err := m.Shutdown(30 * time.Second); err != nil {
			t.Error(err)
		}
	})
	return m
}
