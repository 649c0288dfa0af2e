package nspawn

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A booted container runs systemd as PID 1, answers systemctl and
// journalctl, sees files copied in, reaches the host's loopback, and halts
// cleanly.
func TestBoot(t *testing.T) {
	m := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := m.Run(ctx, name, args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("cat", "/proc/1/comm"); got != "systemd" {
		t.Errorf("PID 1 is %q, want systemd", got)
	}
	if got := run("systemctl", "is-system-running"); got != "running" {
		t.Errorf("system %q, want running; failed units:\n%s", got, run("systemctl", "--failed", "--no-legend"))
	}
	if got := run("systemctl", "show", "--property=ActiveState", "systemd-journald.service"); got != "ActiveState=active" {
		t.Errorf("journald: %q", got)
	}

	src := t.TempDir() + "/hello"
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hello from $(cat /proc/1/comm)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.CopyIn(src, "/usr/local/bin/hello", 0o755); err != nil {
		t.Fatal(err)
	}
	if got := run("hello"); got != "hello from systemd" {
		t.Errorf("copied script said %q", got)
	}

	// The host's loopback is the container's.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("from the host\n"))
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if got := run("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+port+" && cat <&3"); got != "from the host" {
		t.Errorf("read %q from the host's listener", got)
	}

	// A reboot keeps what the container wrote.
	run("sh", "-c", "echo kept > /var/tmp/mark")
	before := m.PID1()
	if err := m.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if m.PID1() == before || run("cat", "/var/tmp/mark") != "kept" || run("cat", "/proc/1/comm") != "systemd" {
		t.Errorf("after the reboot: pid 1 = host pid %d (was %d), /var/tmp/mark and PID 1 wrong", m.PID1(), before)
	}

	if err := m.Shutdown(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Console(), "Reached target") {
		t.Errorf("no boot on the console:\n%s", m.Console())
	}
}

// The tail buffer keeps the end of a long output.
func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	b.Write([]byte(strings.Repeat("x", 20<<10)))
	b.Write([]byte("the end"))
	if s := b.String(); len(s) != 16<<10 || !strings.HasSuffix(s, "xthe end") {
		t.Errorf("kept %d bytes ending %q", len(s), s[len(s)-10:])
	}
}

// A finished root in the cache is used as it is; an unfinished one (no
// systemd: a build interrupted before its rename) is never taken for one.
func TestRootfsCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("GATEHOUSE_TEST_CACHE", cache)
	final := cache + "/debian-rootfs-" + RootfsVersion
	if complete(final) {
		t.Fatal("an empty cache holds a root")
	}
	if err := os.MkdirAll(final+"/usr/lib/systemd", 0o755); err != nil {
		t.Fatal(err)
	}
	if complete(final) {
		t.Error("a root without systemd passed for a finished one")
	}
	if err := os.WriteFile(final+"/usr/lib/systemd/systemd", nil, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := Rootfs(context.Background(), func(format string, args ...any) { t.Errorf("built: "+format, args...) })
	if err != nil || root != final {
		t.Errorf("Rootfs = %q, %v; want the cached %s", root, err, final)
	}
}
