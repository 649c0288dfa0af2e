//go:build linux

package evloop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loops' sockets are nonblocking, so reads and writes return at once:
// they go through RawSyscall, which skips the scheduler's bookkeeping for
// a call that may block. Only epoll_wait with a timeout can block.

func sysRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func sysWrite(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func sysWritev(fd int, iov *[2]unix.Iovec) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), 2)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// epollWait first polls without blocking, which is all a busy loop needs,
// and blocks (letting the runtime hand the thread's P to others) only
// when nothing is ready.
func (l *loop) epollWait(msec int) (int, error) {
	ev := uintptr(unsafe.Pointer(&l.events[0]))
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), ev, uintptr(len(l.events)), 0, 0, 0)
	if e != 0 && e != unix.EINTR {
		return 0, e
	}
	if n > 0 || msec == 0 {
		return int(n), nil
	}
	n, _, e = unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), ev, uintptr(len(l.events)), uintptr(msec), 0, 0)
	if e != 0 {
		if e == unix.EINTR {
			return 0, nil
		}
		return 0, e
	}
	return int(n), nil
}
