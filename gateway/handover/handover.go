package handover

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// maxFiles bounds the descriptors of one offer (one socket per event loop,
// plus the status, HTTPS and pprof sockets).
const maxFiles = 256

// ErrNoOffer is returned by Take when no process offers its sockets under
// the name: there is nothing to take over.
var ErrNoOffer = errors.New("no gateway offers its sockets")

// Name is the abstract Unix socket name of the gateway with data directory
// dir.
func Name(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(abs))
	return "@gatehouse/handover/" + hex.EncodeToString(sum[:16])
}

// Listener is one listening address: Name is the gateway flag it comes
// from ("listen", "status_listen", ...), Addr the address that flag asked
// for (so that a new process with another address binds its own), Files
// its sockets.
type Listener struct {
	Name  string     `json:"name"`
	Addr  string     `json:"addr"`
	Count int        `json:"count"`
	Files []*os.File `json:"-"`
}

// Offered is the header of the old process's answer.
type Offered struct {
	PID       int        `json:"pid"`
	Listeners []Listener `json:"listeners,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// Offer is the old side: it listens on Name and hands its sockets to one
// taker at a time.
type Offer struct {
	ln    *net.UnixListener
	log   hclog.Logger
	ready chan struct{}
	once  sync.Once
}

// Hooks are what an Offer asks of its gateway.
type Hooks struct {
	// Prepare is called when a process asks for the sockets: it returns
	// them (descriptors of its own, closed after sending) once the
	// gateway let go of what the new process needs (the store).
	Prepare func() ([]Listener, error)
	// Abort is called when the process that took the sockets went away
	// before it was ready: the gateway takes back what it let go.
	Abort func()
}

// Listen binds name (see Name).
func Listen(name string, log hclog.Logger) (*Offer, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("handover: listen %s: %w", name, err)
	}
	return &Offer{ln: ln, log: log, ready: make(chan struct{})}, nil
}

// Ready is closed when a new process took the sockets and is ready: the
// gateway must stop accepting and drain.
func (o *Offer) Ready() <-chan struct{} { return o.ready }

// Close stops offering. A connection of a process that became ready stays
// open until this process exits: that is how the new one learns it is gone.
func (o *Offer) Close() error { return o.ln.Close() }

// Serve answers takers until Close or until one of them is ready.
func (o *Offer) Serve(h Hooks) {
	for {
		c, err := o.ln.AcceptUnix()
		if err != nil {
			return
		}
		if o.serveOne(c, h) {
			o.once.Do(func() { close(o.ready) })
			return
		}
	}
}

// serveOne hands the sockets to c; it reports whether c became ready.
func (o *Offer) serveOne(c *net.UnixConn, h Hooks) bool {
	if err := sameUser(c); err != nil {
		o.log.Warn("handover refused", "error", err)
		c.Close()
		return false
	}
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "TAKE\n" {
		c.Close()
		return false
	}
	c.SetReadDeadline(time.Time{})
	ls, err := h.Prepare()
	if err != nil {
		b, _ := json.Marshal(Offered{PID: os.Getpid(), Error: err.Error()})
		c.Write(b)
		c.Close()
		return false
	}
	err = send(c, ls)
	for _, l := range ls {
		for _, f := range l.Files {
			f.Close()
		}
	}
	if err != nil {
		o.log.Error("handover: send sockets", "error", err)
		c.Close()
		h.Abort()
		return false
	}
	o.log.Info("listening sockets handed over; waiting for the new process to be ready")
	line, err := r.ReadString('\n')
	if err != nil || line != "READY\n" {
		o.log.Warn("the new process went away before it was ready; serving on", "error", err)
		c.Close()
		h.Abort()
		return false
	}
	// c stays open (never closed here) until this process exits.
	o.log.Info("the new process is ready: draining")
	return true
}

func send(c *net.UnixConn, ls []Listener) error {
	var fds []int
	hdr := Offered{PID: os.Getpid()}
	for _, l := range ls {
		l.Count = len(l.Files)
		for _, f := range l.Files {
			fds = append(fds, int(f.Fd()))
		}
		hdr.Listeners = append(hdr.Listeners, l)
	}
	if len(fds) > maxFiles {
		return fmt.Errorf("%d sockets, at most %d", len(fds), maxFiles)
	}
	b, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.WriteMsgUnix(b, oob, nil)
	if err != nil {
		return err
	}
	if n != len(b) || oobn != len(oob) {
		return errors.New("short write")
	}
	return nil
}

// sameUser refuses a peer that runs as another user.
func sameUser(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var (
		cred *unix.Ucred
		cerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("peer pid %d runs as uid %d, not %d", cred.Pid, cred.Uid, os.Getuid())
	}
	return nil
}

// Taken is the new side: the sockets of the old process and the
// connection to it.
type Taken struct {
	// PID is the old process's.
	PID       int
	Listeners []Listener
	conn      *net.UnixConn
	gone      chan struct{}
	readyOnce sync.Once
}

// Take asks the process offering under name for its sockets. ErrNoOffer:
// none does.
func Take(name string, timeout time.Duration) (*Taken, error) {
	d := net.Dialer{Timeout: timeout}
	raw, err := d.Dial("unix", name)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, ErrNoOffer
		}
		return nil, fmt.Errorf("handover: %w", err)
	}
	c := raw.(*net.UnixConn)
	fail := func(err error) (*Taken, error) {
		c.Close()
		return nil, fmt.Errorf("handover: %w", err)
	}
	if err := sameUser(c); err != nil {
		return fail(err)
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("TAKE\n")); err != nil {
		return fail(err)
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(maxFiles*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return fail(err)
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return fail(err)
		}
		for _, m := range msgs {
			got, err := unix.ParseUnixRights(&m)
			if err != nil {
				return fail(err)
			}
			fds = append(fds, got...)
		}
	}
	closeFDs := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	var hdr Offered
	if err := json.Unmarshal(buf[:n], &hdr); err != nil {
		closeFDs()
		return fail(fmt.Errorf("answer: %w", err))
	}
	if hdr.Error != "" {
		closeFDs()
		return fail(fmt.Errorf("process %d refused: %s", hdr.PID, hdr.Error))
	}
	want := 0
	for _, l := range hdr.Listeners {
		want += l.Count
	}
	if want != len(fds) {
		closeFDs()
		return fail(fmt.Errorf("answer lists %d sockets, %d came", want, len(fds)))
	}
	c.SetDeadline(time.Time{})
	t := &Taken{PID: hdr.PID, conn: c, gone: make(chan struct{})}
	i := 0
	for _, l := range hdr.Listeners {
		for range l.Count {
			unix.CloseOnExec(fds[i])
			l.Files = append(l.Files, os.NewFile(uintptr(fds[i]), l.Name))
			i++
		}
		t.Listeners = append(t.Listeners, l)
	}
	return t, nil
}

// Files returns the sockets of listener name if the old process bound
// them for the same address, else nil.
func (t *Taken) Files(name, addr string) []*os.File {
	if t == nil {
		return nil
	}
	for _, l := range t.Listeners {
		if l.Name == name && l.Addr == addr {
			return l.Files
		}
	}
	return nil
}

// Ready tells the old process to drain, and starts watching for its exit.
func (t *Taken) Ready() error {
	var err error
	t.readyOnce.Do(func() {
		_, err = t.conn.Write([]byte("READY\n"))
		go func() {
			var b [64]byte
			for {
				if _, err := t.conn.Read(b[:]); err != nil {
					break
				}
			}
			t.conn.Close()
			close(t.gone)
		}()
	})
	return err
}

// Gone is closed once the old process has exited (after Ready).
func (t *Taken) Gone() <-chan struct{} { return t.gone }

// Close gives up: the old process serves on. Unused sockets are closed.
func (t *Taken) Close() {
	t.conn.Close()
}
