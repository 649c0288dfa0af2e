package nodemanager

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// sdNotify talks to systemd when the node manager's unit is Type=notify
// with a watchdog; without $NOTIFY_SOCKET it does nothing.
type sdNotify struct {
	socket   string
	watchdog time.Duration // 0: no watchdog for this process
}

// takeSystemdEnv reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and
// removes them from the environment, so that the processes the node
// manager starts (systemctl, the gateway binary it probes, the exec
// driver's gateways) do not inherit them: systemd refuses and logs their
// messages (NotifyAccess=main), and a gateway must never ping the node
// manager's watchdog.
func takeSystemdEnv() sdNotify {
	n := sdNotify{socket: os.Getenv("NOTIFY_SOCKET")}
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	pid := os.Getenv("WATCHDOG_PID")
	if err == nil && usec > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.watchdog = time.Duration(usec) * time.Microsecond
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(k)
	}
	return n
}

// notify sends a state to systemd.
func (n sdNotify) notify(state string) {
	path := n.socket
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Write([]byte(state))
}

// pingWatchdog pings systemd at half its watchdog interval while the node
// manager's loops run.
func (n sdNotify) pingWatchdog(ctx context.Context) {
	if n.watchdog <= 0 || n.socket == "" {
		return
	}
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.notify("WATCHDOG=1")
		}
	}
}
