package nodemanager

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The node manager keeps systemd's notify socket and watchdog to itself:
// it reads them, and the processes it starts (systemctl, gateways) do not
// inherit them, since systemd refuses and logs their messages.
func TestSystemdEnv(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tc := range []struct {
		name, usec, pid string
		watchdog        time.Duration
	}{
		{"watchdog for this process", "200000", strconv.Itoa(os.Getpid()), 200 * time.Millisecond},
		{"watchdog for any main process", "200000", "", 200 * time.Millisecond},
		{"watchdog for another process", "200000", "1", 0},
		{"no watchdog", "", "", 0},
		{"bad interval", "soon", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", sock)
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			sd := takeSystemdEnv()
			if sd.socket != sock || sd.watchdog != tc.watchdog {
				t.Errorf("took socket %q watchdog %s, want %q %s", sd.socket, sd.watchdog, sock, tc.watchdog)
			}
			out, err := exec.Command("env").Output()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="} {
				if strings.Contains(string(out), k) {
					t.Errorf("a child process inherits %s", k)
				}
			}
			sd.notify("READY=1")
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			if err != nil || string(buf[:n]) != "READY=1" {
				t.Errorf("systemd got %q, %v", buf[:n], err)
			}
			if tc.watchdog == 0 {
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { sd.pingWatchdog(ctx); close(done) }()
			n, err = conn.Read(buf)
			cancel()
			<-done
			if err != nil || string(buf[:n]) != "WATCHDOG=1" {
				t.Errorf("watchdog ping %q, %v", buf[:n], err)
			}
		})
	}
}
