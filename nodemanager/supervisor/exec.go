package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Files of an instance under ExecOptions.DataDir/instances/<name>/.
const (
	PidFileName = "gateway.pid"
	LogFileName = "gateway.log"
)

// ExecOptions configure the exec driver. Zero values take the defaults.
type ExecOptions struct {
	// DataDir is the node manager's data dir; instance <name> lives in
	// DataDir/instances/<name> (its working directory, pid file and log;
	// give the gateway the same dir as --data-dir).
	DataDir string
	Logger  hclog.Logger
	// LogMaxSize is the size past which gateway.log is rotated (default
	// 10 MiB); LogKeep is how many rotated files are kept (gateway.log.1
	// is the newest; default 3).
	LogMaxSize int64
	LogKeep    int
	// PollInterval is how often the driver checks that an adopted process
	// still lives, and every log's size (default 500 ms).
	PollInterval time.Duration
	// KillWait is how long Stop waits for the process to vanish after
	// SIGKILL before it reports an error (default 5 s).
	KillWait time.Duration
}

// Exec is the default driver: gateways are child processes of the node
// manager, each in its own process group, writing to its own log file.
type Exec struct {
	opts ExecOptions
	log  hclog.Logger

	mu       sync.Mutex
	logLocks map[string]*sync.Mutex
}

var _ Driver = (*Exec)(nil)

// NewExec makes an exec driver on opts.DataDir.
func NewExec(opts ExecOptions) (*Exec, error) {
	if opts.DataDir == "" {
		return nil, errors.New("exec driver: no data dir")
	}
	abs, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("exec driver: %w", err)
	}
	opts.DataDir = abs
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.LogMaxSize <= 0 {
		opts.LogMaxSize = 10 << 20
	}
	if opts.LogKeep <= 0 {
		opts.LogKeep = 3
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.KillWait <= 0 {
		opts.KillWait = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Join(opts.DataDir, "instances"), 0o700); err != nil {
		return nil, fmt.Errorf("exec driver: %w", err)
	}
	return &Exec{opts: opts, log: opts.Logger, logLocks: make(map[string]*sync.Mutex)}, nil
}

// InstanceDir is where instance name keeps its files.
func (e *Exec) InstanceDir(name string) string {
	return filepath.Join(e.opts.DataDir, "instances", name)
}

// LogPath is instance name's log file.
func (e *Exec) LogPath(name string) string {
	return filepath.Join(e.InstanceDir(name), LogFileName)
}

func (e *Exec) pidPath(name string) string {
	return filepath.Join(e.InstanceDir(name), PidFileName)
}

// pidRecord is the content of gateway.pid: enough to find the process again
// and to be sure it is the same process, not another one that got its pid.
type pidRecord struct {
	PID int `json:"pid"`
	// StartTicks is field 22 of /proc/<pid>/stat at start: with BootID,
	// it tells the process apart from a later one with the same pid.
	StartTicks uint64 `json:"start_ticks"`
	BootID     string `json:"boot_id"`
	// Argv is the whole command line, compared with /proc/<pid>/cmdline.
	Argv      []string  `json:"argv"`
	Hash      string    `json:"spec_hash"`
	StartedAt time.Time `json:"started_at"`
}

// Start starts spec as a child process: its own process group (so that a
// signal to the node manager's group, or its death, does not reach it), no
// parent-death signal, stdin from /dev/null, stdout and stderr appended to
// gateway.log, working directory the instance dir. The environment is the
// node manager's without its GATEHOUSE_* variables, plus spec.Env.
func (e *Exec) Start(ctx context.Context, spec Spec) (Proc, error) {
	return e.start(spec, false)
}

var _ Replacer = (*Exec)(nil)

// StartReplacement starts spec beside the instance's running process,
// with --takeover added to its arguments (the gateway takes the running
// one's sockets), and without writing the pid file: the running process
// stays the instance's until Promote.
func (e *Exec) StartReplacement(ctx context.Context, spec Spec) (Proc, error) {
	return e.start(spec, true)
}

// TakeoverReadyFileName is the file a replacement gateway writes once it
// serves and the process it replaces drains (gateway
// --takeover-ready-file).
const TakeoverReadyFileName = "takeover.ready"

func (e *Exec) takeoverReadyPath(name string) string {
	return filepath.Join(e.InstanceDir(name), TakeoverReadyFileName)
}

// Serving reports whether replacement p wrote that it serves.
func (e *Exec) Serving(p Proc) bool {
	ep, ok := p.(*execProc)
	if !ok {
		return false
	}
	b, err := os.ReadFile(e.takeoverReadyPath(ep.name))
	if err != nil {
		return false
	}
	var rec struct {
		PID string `json:"pid"`
	}
	return json.Unmarshal(b, &rec) == nil && rec.PID == strconv.Itoa(ep.rec.PID)
}

// Promote writes p's pid file: it is the instance's process now.
func (e *Exec) Promote(p Proc) error {
	ep, ok := p.(*execProc)
	if !ok {
		return fmt.Errorf("promote: not a process of the exec driver: %T", p)
	}
	return writeFileAtomic(e.pidPath(ep.name), mustJSON(ep.rec), 0o600)
}

func (e *Exec) start(spec Spec, replacement bool) (Proc, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	dir := e.InstanceDir(spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	lk := e.logLock(spec.Name)
	lk.Lock()
	// The running process writes to the log during a replacement.
	if !replacement {
		if err := e.rotateByRename(spec.Name); err != nil {
			e.log.Warn("cannot rotate gateway log", "instance", spec.Name, "error", err)
		}
	}
	logf, err := os.OpenFile(e.LogPath(spec.Name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	lk.Unlock()
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", spec.Name, err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "=== %s gatehouse node: starting instance %s\n", time.Now().UTC().Format(time.RFC3339Nano), spec.Name)

	args := spec.Args
	if replacement {
		ready := e.takeoverReadyPath(spec.Name)
		if err := os.Remove(ready); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("start %s: %w", spec.Name, err)
		}
		args = append(slices.Clone(args), "--takeover", "--takeover-ready-file", ready)
	}
	cmd := exec.Command(spec.Binary, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(os.Environ(), spec.Env)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	pid := cmd.Process.Pid
	rec := pidRecord{
		PID:       pid,
		Argv:      append([]string{spec.Binary}, args...),
		Hash:      spec.Hash(),
		StartedAt: time.Now(),
	}
	// Not reaped before Wait, so /proc/<pid> is there even if it exited.
	if st, err := readProcStat(pid); err == nil {
		rec.StartTicks = st.StartTicks
	} else {
		e.log.Warn("cannot read process start time: it will not be adopted after a restart", "instance", spec.Name, "error", err)
	}
	if id, err := readBootID(); err == nil {
		rec.BootID = id
	}
	if !replacement {
		if err := writeFileAtomic(e.pidPath(spec.Name), mustJSON(rec), 0o600); err != nil {
			e.log.Warn("cannot write pid file: the process will not be adopted after a restart", "instance", spec.Name, "error", err)
		}
	}
	p := e.newProc(spec.Name, rec, cmd.Process)
	go p.wait(cmd)
	go p.monitor(false)
	return p, nil
}

// childEnv is parent without GATEHOUSE_* (the node manager's own settings
// are not the gateway's) and without the keys of extra, then extra.
func childEnv(parent, extra []string) []string {
	keys := make(map[string]bool, len(extra))
	for _, kv := range extra {
		keys[envKey(kv)] = true
	}
	out := make([]string, 0, len(parent)+len(extra))
	for _, kv := range parent {
		k := envKey(kv)
		if keys[k] || strings.HasPrefix(k, "GATEHOUSE_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// Adopt finds the processes of instances whose pid file names a live
// process that is the one written down: same boot, same start time (so not
// a reused pid), same command line. Any other pid file is stale and
// removed.
func (e *Exec) Adopt(ctx context.Context) ([]Proc, error) {
	entries, err := os.ReadDir(filepath.Join(e.opts.DataDir, "instances"))
	if err != nil {
		return nil, fmt.Errorf("exec driver: %w", err)
	}
	var out []Proc
	for _, ent := range entries {
		name := ent.Name()
		if !ent.IsDir() || !nameRE.MatchString(name) {
			continue
		}
		path := e.pidPath(name)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("exec driver: %w", err)
		}
		var rec pidRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			e.log.Warn("removing unreadable pid file", "instance", name, "error", err)
			os.Remove(path)
			continue
		}
		proc, why := e.identify(rec)
		if proc == nil {
			e.log.Info("not adopting: stale pid file removed", "instance", name, "pid", rec.PID, "reason", why)
			os.Remove(path)
			continue
		}
		p := e.newProc(name, rec, proc)
		p.adopted = true
		go p.monitor(true)
		out = append(out, p)
	}
	return out, nil
}

// identify returns a handle on rec's process if it is still the one rec
// describes, else why not.
func (e *Exec) identify(rec pidRecord) (*os.Process, string) {
	if rec.PID <= 1 || rec.StartTicks == 0 {
		return nil, "incomplete record"
	}
	if id, err := readBootID(); err != nil || id != rec.BootID {
		return nil, "written before the last boot"
	}
	check := func() string {
		st, err := readProcStat(rec.PID)
		switch {
		case err != nil:
			return "no such process"
		case st.State == 'Z':
			return "process exited"
		case st.StartTicks != rec.StartTicks:
			return "pid reused by another process (start time differs)"
		}
		argv, err := readCmdline(rec.PID)
		if err != nil || !slices.Equal(argv, rec.Argv) {
			return "pid reused by another process (command line differs)"
		}
		return ""
	}
	if why := check(); why != "" {
		return nil, why
	}
	// On Linux the handle holds a pidfd: checked again after it is open,
	// it designates this very process for good, and its signals cannot
	// reach a later process that reuses the pid.
	proc, err := os.FindProcess(rec.PID)
	if err != nil {
		return nil, err.Error()
	}
	if why := check(); why != "" {
		proc.Release()
		return nil, why
	}
	return proc, ""
}

// Remove deletes the instance's pid file. Its directory (the gateway's
// data) and logs are kept.
func (e *Exec) Remove(ctx context.Context, name string) error {
	if err := os.Remove(e.pidPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (e *Exec) logLock(name string) *sync.Mutex {
	e.mu.Lock()
	defer e.mu.Unlock()
	lk, ok := e.logLocks[name]
	if !ok {
		lk = new(sync.Mutex)
		e.logLocks[name] = lk
	}
	return lk
}

// rotateByRename rotates gateway.log when it is over the size limit, by
// renaming: for when no process writes to it (before a start).
func (e *Exec) rotateByRename(name string) error {
	path := e.LogPath(name)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= e.opts.LogMaxSize {
		return nil
	}
	if err := e.shiftLogs(path); err != nil {
		return err
	}
	return os.Rename(path, path+".1")
}

// rotateByCopy rotates gateway.log when it is over the size limit while a
// gateway appends to it: copy to gateway.log.1, then truncate. The child
// opened the file with O_APPEND, so its next write lands at the new end;
// lines written between the copy and the truncation are lost.
func (e *Exec) rotateByCopy(name string) error {
	lk := e.logLock(name)
	lk.Lock()
	defer lk.Unlock()
	path := e.LogPath(name)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= e.opts.LogMaxSize {
		return nil
	}
	if err := e.shiftLogs(path); err != nil {
		return err
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".1.tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path+".1"); err != nil {
		return err
	}
	return os.Truncate(path, 0)
}

// shiftLogs drops the oldest rotated log and renames .N to .N+1.
func (e *Exec) shiftLogs(path string) error {
	keep := e.opts.LogKeep
	if err := os.Remove(path + "." + strconv.Itoa(keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := keep - 1; i >= 1; i-- {
		err := os.Rename(path+"."+strconv.Itoa(i), path+"."+strconv.Itoa(i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// execProc is a gateway process of the exec driver: a child (waited for)
// or an adopted process (polled).
type execProc struct {
	e       *Exec
	name    string
	rec     pidRecord
	proc    *os.Process
	adopted bool

	done     chan struct{}
	finish   sync.Once
	exit     Exit // written before done is closed
	detached chan struct{}
	detach   sync.Once
}

func (e *Exec) newProc(name string, rec pidRecord, proc *os.Process) *execProc {
	return &execProc{
		e:        e,
		name:     name,
		rec:      rec,
		proc:     proc,
		done:     make(chan struct{}),
		detached: make(chan struct{}),
	}
}

func (p *execProc) Name() string          { return p.name }
func (p *execProc) Hash() string          { return p.rec.Hash }
func (p *execProc) Done() <-chan struct{} { return p.done }
func (p *execProc) Info() ProcInfo {
	return ProcInfo{PID: p.rec.PID, StartedAt: p.rec.StartedAt}
}

// Exit is valid once Done is closed.
func (p *execProc) Exit() Exit { return p.exit }

func (p *execProc) Detach() {
	p.detach.Do(func() { close(p.detached) })
}

func (p *execProc) isDetached() bool {
	select {
	case <-p.detached:
		return true
	default:
		return false
	}
}

// end records the exit. The pid file goes too unless the process was
// detached: a later supervisor may own the instance (and its pid file) now.
func (p *execProc) end(reason string) {
	p.finish.Do(func() {
		if !p.isDetached() {
			p.removePidFile()
		}
		p.exit = Exit{Reason: reason}
		close(p.done)
	})
}

// removePidFile removes the pid file if it still names this process.
func (p *execProc) removePidFile() {
	path := p.e.pidPath(p.name)
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var rec pidRecord
	if json.Unmarshal(b, &rec) == nil && rec.PID == p.rec.PID && rec.StartTicks == p.rec.StartTicks {
		os.Remove(path)
	}
}

// wait reaps a child; it runs until the child exits, even after Detach, so
// that no zombie is left.
func (p *execProc) wait(cmd *exec.Cmd) {
	err := cmd.Wait()
	reason := "exit status 0"
	if cmd.ProcessState != nil {
		reason = cmd.ProcessState.String()
	} else if err != nil {
		reason = err.Error()
	}
	p.end(reason)
}

// monitor rotates the log and, for an adopted process (not our child: no
// Wait), polls that it still lives.
func (p *execProc) monitor(poll bool) {
	t := time.NewTicker(p.e.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.detached:
			if p.adopted {
				p.proc.Release()
			}
			return
		case <-t.C:
		}
		if poll && !p.alive() {
			p.end("exited (adopted process: exit status unknown)")
			p.proc.Release()
			return
		}
		if err := p.e.rotateByCopy(p.name); err != nil {
			p.e.log.Warn("cannot rotate gateway log", "instance", p.name, "error", err)
		}
	}
}

// alive reports whether the process is still the one started: signal 0
// through the handle (a pidfd on Linux), and not a zombie waiting for a
// parent that does not reap it.
func (p *execProc) alive() bool {
	if err := p.proc.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := readProcStat(p.rec.PID)
	return err == nil && st.State != 'Z' && st.StartTicks == p.rec.StartTicks
}

// signal sends sig to the process's group when the process leads one (as
// every process Start makes does), else to the process alone.
func (p *execProc) signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	// The pid is ours while the handle says the process lives: a child is
	// not reaped before wait ends (which closes done), and an adopted
	// process is checked by start time.
	if err := p.proc.Signal(syscall.Signal(0)); err != nil {
		return err
	}
	if st, err := readProcStat(p.rec.PID); err == nil && st.PGID == p.rec.PID && st.StartTicks == p.rec.StartTicks {
		if err := unix.Kill(-p.rec.PID, sig); err == nil {
			return nil
		}
	}
	return p.proc.Signal(sig)
}

// Stop sends SIGTERM to the process group, waits up to timeout, then sends
// SIGKILL and waits up to KillWait.
func (p *execProc) Stop(ctx context.Context, timeout time.Duration) error {
	if err := p.signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM %d: %w", p.rec.PID, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	p.e.log.Warn("gateway did not stop in time: killing it", "instance", p.name, "pid", p.rec.PID, "drain_timeout", timeout)
	if err := p.signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL %d: %w", p.rec.PID, err)
	}
	t.Reset(p.e.opts.KillWait)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("process %d still running %s after SIGKILL", p.rec.PID, p.e.opts.KillWait)
	}
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so that a reader never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}
