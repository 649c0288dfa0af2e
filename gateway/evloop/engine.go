//go:build linux

package evloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Config configures an Engine. Zero fields take the documented defaults.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:8080", ":8080" or
	// "[::1]:8080". Only IP literals (or an empty host) are accepted.
	Addr string
	// Loops is the number of event loops, each on its own OS thread
	// (default runtime.GOMAXPROCS(0)).
	Loops      int
	Dispatcher Dispatcher
	Logger     hclog.Logger
	// IdleTimeout bounds a keep-alive client connection between requests,
	// and any stall of the client while an exchange or tunnel waits on it
	// (default 75s).
	IdleTimeout time.Duration
	// HeaderTimeout bounds receiving a request head from its first byte
	// (default 30s).
	HeaderTimeout time.Duration
	// MaxHeaderBytes limits a request head; a larger one is answered with
	// 431 (default 16 KiB, at most 64 KiB).
	MaxHeaderBytes int
	// UpstreamIdle is how long an idle pooled upstream connection is kept
	// (default 60s).
	UpstreamIdle time.Duration
	// MaxIdlePerTarget limits idle upstream connections per target and
	// per loop (default 64).
	MaxIdlePerTarget int
	// Handoff serves the connections whose exchange asked for a hand-off
	// (Exchange.Handoff), each on a goroutine of its own; its Read gives
	// the bytes from the head of the handed-off request on.
	Handoff func(net.Conn)
	// ConnState, if set, is called on a loop's thread when a client
	// connection opens (true) and closes (false). It must not block.
	ConnState func(open bool)
	// Files are listening sockets to serve instead of binding Addr: those
	// a gateway being replaced handed over (Engine.Files of its engine).
	// Each gets a loop of its own (more loops than Loops if need be), so
	// that every accept queue is served; further loops join them with
	// sockets of their own (SO_REUSEPORT) on the same address.
	Files []*os.File
}

// Defaults for an exchange whose Dispatcher left the timeouts zero.
const (
	defaultConnectTimeout = 10 * time.Second
	defaultReadTimeout    = 60 * time.Second
)

// bufSize is the size of read buffers, which is also the most a
// connection holds of a body in flight per direction.
const bufSize = 64 << 10

// Engine states, moved forward only.
const (
	stateRunning = iota
	stateDraining
	stateForced
)

// Engine is a set of event loops sharing one listen address.
//
// What the engine does on its own, beyond asking the Dispatcher:
//
//   - It answers requests it cannot frame safely itself, with the
//     gateway's JSON error body and Connection: close: malformed heads
//     (400), Content-Length with Transfer-Encoding or differing
//     Content-Lengths (400), a transfer coding other than a single
//     "chunked" (501), CONNECT (501), HTTP versions other than 1.0 and
//     1.1 (505), heads over MaxHeaderBytes (431). Those requests never
//     reach the Dispatcher, so Done is not called for them. A malformed
//     chunked request body, found while forwarding, is answered with 400
//     when nothing of the response went out yet, and Done gets the error.
//   - Targets must be IP literals ("10.0.0.1:80", "[::1]:80"): resolving a
//     name would block the loop. Any other target fails the attempt with
//     an error the Dispatcher sees in Failed.
//   - A pooled upstream connection that fails before sending a byte of
//     the response is retried once on a new connection, without asking
//     the Dispatcher, when the request has no body: that is the target
//     closing an idle connection as the request went out.
//   - A local response to a request whose body has not been read closes
//     the connection afterwards instead of reading the body.
//   - A client that half-closes its side while an exchange is in flight
//     is taken to have gone away: the exchange is abandoned.
//   - Response bodies are forwarded with their framing unchanged, except
//     that an HTTP/1.0 client gets a chunked body without its chunked
//     framing (and the connection closed after it). Headers named in the
//     target's Connection header are not removed, only the fixed
//     hop-by-hop set.
//   - Shutdown waits for WebSocket tunnels like any other exchange; they
//     end when a side closes or IdleTimeout passes without traffic.
//   - A panic in a Dispatcher method is logged with its stack and closes
//     that client connection; Done is not called for its exchange.
type Engine struct {
	cfg   Config
	addr  net.Addr
	loops []*loop
	base  time.Time // origin of the loops' monotonic clocks

	state atomic.Int32
	// mu guards serving and closed, and the eventfds' lifetime: a wake-up
	// must not write to a descriptor number that was closed and reused.
	mu      sync.Mutex
	serving bool
	closed  bool
	done    chan struct{}
}

// Listen applies cfg's defaults and binds one listening socket per loop
// (SO_REUSEPORT), so that an address in use is reported here rather than
// by Serve.
func Listen(cfg Config) (*Engine, error) {
	if cfg.Dispatcher == nil {
		return nil, errors.New("evloop: Config.Dispatcher is required")
	}
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 75 * time.Second
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 30 * time.Second
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 16 << 10
	}
	if cfg.MaxHeaderBytes > bufSize {
		cfg.MaxHeaderBytes = bufSize
	}
	if cfg.UpstreamIdle <= 0 {
		cfg.UpstreamIdle = 60 * time.Second
	}
	if cfg.MaxIdlePerTarget <= 0 {
		cfg.MaxIdlePerTarget = 64
	}
	inherited, ap, err := inheritedSockets(cfg.Files)
	if err != nil {
		return nil, err
	}
	if len(inherited) == 0 {
		if ap, err = parseListenAddr(cfg.Addr); err != nil {
			return nil, err
		}
	}
	cfg.Loops = max(cfg.Loops, len(inherited))
	if ap.Port() != 0 && len(inherited) == 0 {
		// SO_REUSEPORT would let the loops join a port some other
		// process already serves, silently splitting its traffic.
		if err := probePort(ap); err != nil {
			return nil, err
		}
	}
	e := &Engine{cfg: cfg, base: time.Now(), done: make(chan struct{})}
	for i := 0; i < cfg.Loops; i++ {
		lfd := -1
		if i < len(inherited) {
			lfd = inherited[i]
			inherited[i] = -1
		}
		l, err := newLoop(e, ap, lfd)
		if err != nil {
			for _, fd := range inherited {
				if fd >= 0 {
					unix.Close(fd)
				}
			}
			e.closeLoops()
			return nil, err
		}
		e.loops = append(e.loops, l)
		if i == 0 {
			// Port 0 picks a port for the first socket; the others must
			// share it.
			sa, err := unix.Getsockname(l.lfd)
			if err != nil {
				e.closeLoops()
				return nil, fmt.Errorf("evloop: getsockname: %w", err)
			}
			ap = netip.AddrPortFrom(ap.Addr(), uint16(sockaddrPort(sa)))
			e.addr = net.TCPAddrFromAddrPort(ap)
		}
	}
	return e, nil
}

func parseListenAddr(addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("evloop: listen address %q: %w", addr, err)
	}
	var ip netip.Addr
	if host == "" {
		ip = netip.IPv6Unspecified()
	} else if ip, err = netip.ParseAddr(host); err != nil {
		return netip.AddrPort{}, fmt.Errorf("evloop: listen address %q: host must be an IP literal", addr)
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("evloop: listen address %q: %w", addr, err)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(pn)), nil
}

// inheritedSockets duplicates the descriptors of files (the caller keeps
// and closes its own) and returns the address they are bound to; they must
// all be TCP listening sockets on one address.
func inheritedSockets(files []*os.File) ([]int, netip.AddrPort, error) {
	var (
		fds []int
		ap  netip.AddrPort
	)
	fail := func(err error) ([]int, netip.AddrPort, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, netip.AddrPort{}, err
	}
	for i, f := range files {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("evloop: inherited socket: %w", err))
		}
		fds = append(fds, fd)
		if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
			return fail(fmt.Errorf("evloop: inherited descriptor %d is not a listening socket", f.Fd()))
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			return fail(fmt.Errorf("evloop: inherited socket: %w", err))
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return fail(fmt.Errorf("evloop: inherited socket: %w", err))
		}
		got := addrPort(sa)
		if i > 0 && got != ap {
			return fail(fmt.Errorf("evloop: inherited sockets on %s and %s", ap, got))
		}
		ap = got
	}
	return fds, ap, nil
}

// Files returns a duplicate of every loop's listening socket, for the
// process that takes over (Config.Files). The sockets stay open as long
// as either side holds them: a Shutdown here closes this engine's
// descriptors only, and connections waiting in the accept queues are
// accepted by the other process.
func (e *Engine) Files() ([]*os.File, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.state.Load() != stateRunning {
		return nil, errors.New("evloop: engine is shutting down")
	}
	var out []*os.File
	for _, l := range e.loops {
		fd, err := unix.FcntlInt(uintptr(l.lfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			for _, f := range out {
				f.Close()
			}
			return nil, fmt.Errorf("evloop: duplicate listening socket: %w", err)
		}
		out = append(out, os.NewFile(uintptr(fd), "evloop-listener"))
	}
	return out, nil
}

// closeLoops closes every loop's descriptors once no loop runs.
func (e *Engine) closeLoops() {
	for _, l := range e.loops {
		l.closeFDs()
		unix.Close(l.efd)
	}
}

// Addr returns the address the engine listens on (with the actual port
// when the configured one was 0).
func (e *Engine) Addr() net.Addr { return e.addr }

// Serve runs the loops until Shutdown and returns nil after a clean
// shutdown. It must be called once.
func (e *Engine) Serve() error {
	e.mu.Lock()
	if e.serving || e.closed {
		e.mu.Unlock()
		if e.closed {
			return nil
		}
		return errors.New("evloop: Serve called twice")
	}
	e.serving = true
	e.mu.Unlock()

	errs := make(chan error, len(e.loops))
	for _, l := range e.loops {
		go func() {
			// The loop blocks in epoll_wait with its thread; locking keeps
			// the goroutine from being moved between threads for nothing.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			errs <- l.run()
		}()
	}
	var first error
	for range e.loops {
		if err := <-errs; err != nil && first == nil {
			first = err
			// A loop that failed cannot serve; take the others down too.
			e.state.CompareAndSwap(stateRunning, stateForced)
			e.wakeAll()
		}
	}
	e.mu.Lock()
	e.closed = true
	e.closeLoops()
	e.mu.Unlock()
	close(e.done)
	return first
}

func (e *Engine) wakeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	for _, l := range e.loops {
		l.wake()
	}
}

// Shutdown stops accepting at once, lets in-flight exchanges finish (their
// client connections are then closed rather than kept alive), closes idle
// connections and pools, and returns when every loop has finished. When
// ctx ends first it closes everything still open and returns ctx.Err().
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.serving {
		if !e.closed {
			e.closed = true
			e.closeLoops()
		}
		e.mu.Unlock()
		return nil
	}
	e.mu.Unlock()
	e.state.CompareAndSwap(stateRunning, stateDraining)
	e.wakeAll()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
	}
	e.state.Store(stateForced)
	e.wakeAll()
	<-e.done
	return ctx.Err()
}
