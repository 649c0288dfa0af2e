package gateway

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/gateway/status"
)

// DefaultProfilingListen is where /debug/pprof is served when Profiling is
// on and ProfilingListen is empty.
const DefaultProfilingListen = "127.0.0.1:6060"

// CheckProfilingListen refuses an address for /debug/pprof that is not
// loopback: an IP literal such as 127.0.0.1 or ::1, or localhost. An empty
// host would listen on every interface.
func CheckProfilingListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address: /debug/pprof reveals the gateway's internals and is served on loopback only (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", addr)
}

// listenProfiling binds the /debug/pprof listener, and checks the address
// it got: a name is resolved when bound, so only then is it known.
func (g *Gateway) listenProfiling() (net.Listener, error) {
	l, err := g.listenTCP("pprof_listen", g.opts.ProfilingListen)
	if err != nil {
		return nil, fmt.Errorf("listen pprof %s: %w", g.opts.ProfilingListen, err)
	}
	if a, ok := l.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		l.Close()
		return nil, fmt.Errorf("listen pprof %s: bound %s, which is not loopback", g.opts.ProfilingListen, l.Addr())
	}
	return l, nil
}

func newProfilingServer(g *Gateway) *http.Server {
	// No write timeout: a CPU profile or a trace answers after as many
	// seconds as it is asked to run.
	return &http.Server{
		Handler:           status.Profiling(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          g.logger.Named("pprof").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
}
