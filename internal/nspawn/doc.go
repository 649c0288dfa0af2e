// Package nspawn boots a minimal Debian with systemd as PID 1 in a
// container for tests, so that what talks to systemd (the node manager's
// systemd driver and units) is proven against the real thing rather than
// a recording.
//
// The root file system is made once per machine with debootstrap
// (Debian's package; the mirror is GATEHOUSE_TEST_DEBIAN_MIRROR, default
// http://deb.debian.org/debian) and cached outside the checkout in
// /var/cache/gatehouse-test/debian-rootfs-<RootfsVersion> (GATEHOUSE_TEST_CACHE
// moves the cache). It is built in a temporary directory renamed into
// place when complete, under a lock, so that an interrupted build is never
// reused and two test processes never build it twice. RootfsVersion is
// bumped whenever the package list changes.
//
// Each Boot copies the cached root (cp -a, a second or two) into a
// directory of its own and runs `systemd-nspawn --boot` on it: tests never
// see each other's state. The container shares the host's network, so a
// process inside reaches a server on the host's 127.0.0.1 and the host
// reaches ports bound inside. The host's PID 1 need not be systemd: the
// container is neither registered with systemd-machined nor given a scope
// unit (--register=no --keep-unit), and commands run inside with nsenter
// into the namespaces of the container's PID 1.
//
// Booting needs root, debootstrap and systemd-nspawn (Debian's
// systemd-container). Where they are missing, or the kernel refuses the
// container, Start skips the test saying why, unless RequireEnv is set
// (CI sets it), which makes that a failure.
package nspawn
