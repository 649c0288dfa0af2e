package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is returned by Start when no PostgreSQL binaries are
// found.
var ErrNotInstalled = errors.New("PostgreSQL binaries (initdb, postgres) not found: install Debian's postgresql package")

// port is the port number in the socket's name (.s.PGSQL.<port>); the
// socket is in the server's own directory, so any number is free.
const port = "5432"

// Server is a PostgreSQL server of a test package. Its methods are not
// safe for concurrent use; its databases are.
type Server struct {
	dir  string
	bin  string
	cred *syscall.Credential
	// cmd is the running postgres, nil while halted; done is closed when
	// it exits, after exitErr is set.
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	stopped bool
	// durable keeps PostgreSQL's defaults for making commits durable.
	durable bool
}

// findBinaries returns the directory holding initdb and postgres.
func findBinaries() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			// The directory of the real binary (PATH may hold links to
			// some of them), where the others are too (pg_basebackup).
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Highest major version first: 9.6 < 15 as numbers, not as strings.
	major := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch {
		case major(a) > major(b):
			return -1
		case major(a) < major(b):
			return 1
		}
		return 0
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// credential is who runs PostgreSQL: the current user, or nobody when that
// is root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no user nobody to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of nobody %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of nobody %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// command prepares a PostgreSQL binary to run as cred, killed when the test
// process dies, so that a crashed test leaves no server behind.
func command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	return cmd
}

// Where servers live: /tmp rather than $TMPDIR, for the socket path's
// length.
const (
	tmpRoot   = "/tmp"
	dirPrefix = "gatehouse-pg-"
)

// sweep removes the directories of servers whose test process died
// without stopping them (postgres died with it, leaving its files): a
// postmaster.pid naming no live process. A directory without one is
// another package's server being set up or restarted, unless it is an
// hour old.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(tmpRoot, dirPrefix+"*"))
	for _, dir := range dirs {
		pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
		if err != nil {
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.RemoveAll(dir)
			}
			continue
		}
		line, _, _ := strings.Cut(string(pidFile), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// Start initialises a cluster in a new temporary directory and starts
// postgres on a Unix socket in it, waiting until it accepts connections.
// ErrNotInstalled when the binaries are absent.
func Start() (*Server, error) { return start(false) }

// StartDurable is Start for a server that makes every commit durable as a
// production server does (fsync, synchronous commit, full page writes):
// for benchmarks, whose figures would otherwise flatter the database.
func StartDurable() (*Server, error) { return start(true) }

func start(durable bool) (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	sweep()
	// A short path: a Unix socket's path is limited to 107 bytes.
	dir, err := os.MkdirTemp(tmpRoot, dirPrefix)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, cred: cred, durable: durable}
	if err := s.initCluster(); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.Resume(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) initCluster() error {
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to nobody: %w", s.dir, err)
		}
	}
	initdb := command(s.cred, filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.dir, "data"),
		"-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	return nil
}

// Resume starts postgres on the server's cluster, as Start did, after
// Halt: what was committed before is there again.
func (s *Server) Resume() error {
	if s.cmd != nil {
		return errors.New("postgres is already running")
	}
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// Durability is not what these tests check; fsync off keeps them fast
	// on a shared machine, and small buffers keep the server light.
	args := []string{"-D", filepath.Join(s.dir, "data"), "-k", s.dir, "-p", port,
		"-c", "listen_addresses=", "-c", "shared_buffers=16MB", "-c", "max_connections=200"}
	if !s.durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := command(s.cred, filepath.Join(s.bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go func() {
		s.exitErr = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.DSN("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("postgres exited (%v): %s", s.exitErr, tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections after 60s (%v): %s", err, tail(logPath))
		}
	}
}

// Halt stops postgres (a fast shutdown: clients are disconnected, nothing
// committed is lost), keeping its cluster for Resume: the database gone
// away, as when a primary is down.
func (s *Server) Halt() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// tail returns the end of the server's log, for an error.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// StartStandby starts a streaming standby of s, the primary: a base
// backup of its cluster (pg_basebackup -R, which writes standby.signal and
// primary_conninfo) in a new directory, started in recovery, read-only
// until promoted (SELECT pg_promote()). It runs as s does, with s's
// durability.
func (s *Server) StartStandby() (*Server, error) {
	dir, err := os.MkdirTemp(tmpRoot, dirPrefix)
	if err != nil {
		return nil, err
	}
	sb := &Server{dir: dir, bin: s.bin, cred: s.cred, durable: s.durable}
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			sb.Stop()
			return nil, fmt.Errorf("hand %s to nobody: %w", dir, err)
		}
	}
	backup := command(s.cred, filepath.Join(s.bin, "pg_basebackup"), "-h", s.dir, "-p", port, "-U", "postgres",
		"-D", filepath.Join(dir, "data"), "-X", "stream", "-R", "--no-sync")
	if out, err := backup.CombinedOutput(); err != nil {
		sb.Stop()
		return nil, fmt.Errorf("pg_basebackup: %w: %s", err, out)
	}
	if err := sb.Resume(); err != nil {
		sb.Stop()
		return nil, err
	}
	return sb, nil
}

// Host is the server's host in a connection string: the directory of its
// Unix socket. Several, separated by commas, make a multi-host string.
func (s *Server) Host() string { return s.dir }

// PID is the postmaster's process id, 0 while halted. Every backend
// serving a connection is a child of it: the server's CPU is that of the
// postmaster and its children.
func (s *Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// DSN is the connection string of database db of the server.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%s user=postgres dbname=%s sslmode=disable", s.dir, port, db)
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	s.Halt()
	os.RemoveAll(s.dir)
}

// Database creates an empty database for t and returns its connection
// string; it is dropped when t ends.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// RequireEnv names the environment variable that makes absent binaries a
// failure rather than a skip: CI sets it, so that the PostgreSQL tests can
// never be skipped there unnoticed.
const RequireEnv = "GATEHOUSE_TEST_REQUIRE_POSTGRES"

// Main runs a test package's tests with a server in *srv, stopping it
// afterwards; call it from TestMain: os.Exit(pgtest.Main(m, &srv)). When
// the binaries are absent *srv stays nil and Need skips the tests that
// need it (unless RequireEnv is set); any other failure to start fails the
// package.
func Main(m *testing.M, srv **Server) int {
	s, err := Start()
	switch {
	case errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) != "":
		fmt.Fprintln(os.Stderr, "pgtest:", err, "- and", RequireEnv, "is set")
		return 1
	case errors.Is(err, ErrNotInstalled):
		fmt.Fprintln(os.Stderr, "pgtest:", err, "- PostgreSQL tests will skip")
		return m.Run()
	case err != nil:
		fmt.Fprintln(os.Stderr, "pgtest: start PostgreSQL:", err)
		return 1
	}
	defer s.Stop()
	*srv = s
	return m.Run()
}

// Need returns srv's connection string of a new database for t, or skips
// t when no server could run because PostgreSQL is not installed.
func Need(t testing.TB, srv *Server) string {
	t.Helper()
	if srv == nil {
		t.Skip(ErrNotInstalled)
	}
	return srv.Database(t)
}
