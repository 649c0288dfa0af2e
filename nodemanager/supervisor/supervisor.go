package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Process states of an instance (State.Process).
const (
	// StateStarting: the driver is starting the process.
	StateStarting = "starting"
	// StateRunning: the process runs.
	StateRunning = "running"
	// StateBackoff: the process exited (or could not be started) and is
	// started again at NextStartAt.
	StateBackoff = "backoff"
	// StateCrashLoop: as StateBackoff, after CrashLoopAfter consecutive
	// short runs; also shown while the process of a crash-looping instance
	// runs and has not yet lasted MinRunTime.
	StateCrashLoop = "crash-loop"
	// StateStopping: SIGTERM was sent; the supervisor waits for the drain.
	StateStopping = "stopping"
	// StateStopped: stopped by the supervisor (shown by OnChange only: a
	// stopped instance leaves States).
	StateStopped = "stopped"
	// StateExited: an adopted process exited before a Reconcile gave the
	// supervisor its Spec, so there is nothing to start it again with yet.
	StateExited = "exited"
)

// Errors wrapped by the supervisor's methods; test them with errors.Is.
var (
	ErrNotFound = errors.New("no such instance")
	ErrClosed   = errors.New("supervisor closed")
	ErrInvalid  = errors.New("invalid spec")
)

// Spec is what one instance runs.
type Spec struct {
	// Name is the instance's name: a directory name under the data dir and
	// a systemd instance name, so [A-Za-z0-9][A-Za-z0-9._-]{0,62}.
	Name string `json:"name"`
	// Group is the instance's group, for display only: the gateway learns
	// it from its own arguments.
	Group string `json:"group,omitempty"`
	// Binary is the absolute path of the executable (the gatehouse binary).
	Binary string `json:"binary"`
	// Args is the whole argument list after the binary, e.g. "gateway",
	// "--instance", "web-1", ...
	Args []string `json:"args"`
	// Env is added to the process's environment as KEY=VALUE entries (the
	// per-instance secret travels here as GATEHOUSE_INSTANCE_SECRET).
	Env []string `json:"-"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate checks what every driver needs: a usable name, an absolute
// binary and KEY=VALUE environment entries.
func (s Spec) Validate() error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("%w: instance name %q must match %s", ErrInvalid, s.Name, nameRE)
	}
	if !filepath.IsAbs(s.Binary) {
		return fmt.Errorf("%w: instance %s: binary %q is not an absolute path", ErrInvalid, s.Name, s.Binary)
	}
	for _, kv := range s.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: instance %s: environment entry %q is not KEY=VALUE", ErrInvalid, s.Name, envKey(kv))
		}
	}
	return nil
}

// envKey is what an error may show of an environment entry: its key, never
// its value (a secret).
func envKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}

// Hash identifies what the instance runs: "sha256:" + hex over Binary,
// Args and Env. A running instance whose desired Spec has another hash is
// restarted. Env is part of it, so a new secret restarts the instance; the
// hash is one-way, so it may be written where the secret may not.
func (s Spec) Hash() string {
	b, _ := json.Marshal(struct {
		Binary string   `json:"binary"`
		Args   []string `json:"args"`
		Env    []string `json:"env"`
	}{s.Binary, s.Args, s.Env})
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// State is the supervisor's view of one instance.
type State struct {
	Name  string `json:"name"`
	Group string `json:"group,omitempty"`
	// Process is one of the State* constants.
	Process string `json:"process"`
	// PID of the running process (0 when none runs).
	PID int `json:"pid,omitempty"`
	// Restarts counts the starts after the first since this supervisor
	// took the instance on (an adopted process counts as the first run),
	// plus the restarts the driver made on its own (systemd's NRestarts).
	Restarts  int       `json:"restarts"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// ExitedAt and LastExit describe the last exit ("exit status 1",
	// "signal: killed").
	ExitedAt time.Time `json:"exited_at,omitzero"`
	LastExit string    `json:"last_exit,omitempty"`
	// LastError is the last failure to start or stop, cleared by a start.
	LastError string `json:"last_error,omitempty"`
	// NextStartAt is when a process in backoff or crash-loop starts again.
	NextStartAt time.Time `json:"next_start_at,omitzero"`
	// Adopted says the running process was found, not started, by this
	// supervisor.
	Adopted bool `json:"adopted,omitempty"`
	// SpecHash is the Spec.Hash the process runs with.
	SpecHash string `json:"spec_hash,omitempty"`
	// WantHash is the Spec.Hash of the spec the supervisor was last given
	// (empty before one): while it differs from SpecHash, the process is
	// still to be replaced or restarted, or its replacement failed.
	WantHash string `json:"want_hash,omitempty"`
}

// Driver starts and finds the processes of instances. The supervisor owns
// the policy (what runs, restarts, backoff, crash loops); a driver only
// does what it is told, on one kind of process manager.
type Driver interface {
	// Start starts spec's instance and returns its running process.
	Start(ctx context.Context, spec Spec) (Proc, error)
	// Adopt returns the processes an earlier supervisor left running, each
	// checked to be the process it started (not a reused pid).
	Adopt(ctx context.Context) ([]Proc, error)
	// Remove forgets an instance that is no longer desired once its
	// process is stopped (pid file, environment file). Data and logs stay.
	Remove(ctx context.Context, name string) error
}

// Proc is one running process of an instance, as a driver sees it.
type Proc interface {
	Name() string
	// Hash is the Spec.Hash it was started with.
	Hash() string
	// Info is where it stands now; it must not block.
	Info() ProcInfo
	// Done is closed when the process has exited and the driver will not
	// bring it back by itself.
	Done() <-chan struct{}
	// Exit describes the exit, once Done is closed.
	Exit() Exit
	// Stop sends SIGTERM, waits up to timeout for the process to exit, then
	// kills it; it returns once the process is gone (Done is closed).
	Stop(ctx context.Context, timeout time.Duration) error
	// Detach stops watching the process and leaves it running: the
	// supervisor is closing and a later one will adopt it.
	Detach()
}

// ProcInfo is where a process stands.
type ProcInfo struct {
	PID       int
	StartedAt time.Time
	// Restarts the driver made by itself since Start or Adopt (systemd's
	// Restart=on-failure); always 0 for the exec driver.
	Restarts int
}

// Exit describes how a process ended.
type Exit struct {
	Reason string
	// CrashLoop says the driver itself gave up restarting a crashing
	// process (systemd's start-limit-hit): the supervisor goes to
	// StateCrashLoop at once.
	CrashLoop bool
}

// Options configure a Supervisor. Zero values take the defaults.
type Options struct {
	// Driver runs the processes (required): NewExec or NewSystemd.
	Driver Driver
	Logger hclog.Logger
	// DrainTimeout is how long a stop waits after SIGTERM before SIGKILL
	// (default 35 s: the gateway's own --drain-timeout default, 30 s, and
	// a margin for it to exit).
	DrainTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay before a restart (default
	// 100 ms and 30 s); the delay doubles with each consecutive short run.
	BackoffMin, BackoffMax time.Duration
	// MinRunTime is how long a run must last to count as healthy: a longer
	// run resets the backoff (default 10 s).
	MinRunTime time.Duration
	// CrashLoopAfter is how many consecutive short runs make a crash loop
	// (default 5).
	CrashLoopAfter int
	// OnChange, if set, is called with an instance's new state after each
	// transition, from the goroutine supervising it. It must not block.
	OnChange func(State)
	// ZeroDowntime replaces a running process (Restart, changed flags)
	// without stopping it first, when the driver is a Replacer: the new
	// process takes over the old one's sockets and the old one drains
	// once the new one is ready. ReadyTimeout bounds the wait for that
	// (default 60 s); a new process that exits or is not ready in time is
	// stopped and the old one serves on.
	ZeroDowntime bool
	ReadyTimeout time.Duration
}

// Replacer is a Driver that can start an instance's new process beside
// the running one, which hands it its listening sockets (gateway
// --takeover) and exits once the new one is ready.
type Replacer interface {
	// StartReplacement starts spec's new process beside the running one.
	StartReplacement(ctx context.Context, spec Spec) (Proc, error)
	// Promote records p as the instance's process (for adoption after a
	// node manager restart), once the process it replaced has exited.
	Promote(p Proc) error
	// Serving reports whether replacement p serves and has told the
	// process it replaces to drain (which may take the drain timeout).
	Serving(p Proc) bool
}

// Supervisor keeps the desired instances running. Its methods are safe
// for concurrent use.
type Supervisor struct {
	opts   Options
	driver Driver
	log    hclog.Logger

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	reconcileMu sync.Mutex // one Reconcile at a time

	mu        sync.Mutex
	closed    bool
	instances map[string]*instance
	wg        sync.WaitGroup
}

// instance is one supervised instance. Its runner goroutine is the only
// one to change proc and the counters; everything but cmds and done is
// guarded by Supervisor.mu.
type instance struct {
	name string
	cmds chan command
	done chan struct{} // closed when the runner returns

	spec *Spec // nil for an adopted process until a Reconcile claims it
	st   State
	// failed is the hash of the spec whose replacement failed last, and
	// failedAt when: the same spec is not tried again on every change of
	// the desired instances (each try takes up to ReadyTimeout, and the
	// desired instances behind it wait).
	failed    string
	failedAt  time.Time
	proc      Proc
	ran       bool // started or adopted at least once: the next start is a restart
	restarts  int  // starts after the first, plus driver restarts of past procs
	shortRuns int  // consecutive runs shorter than MinRunTime
}

type cmdKind int

const (
	cmdUpdate cmdKind = iota
	cmdRestart
	cmdStop
)

type command struct {
	kind  cmdKind
	spec  Spec
	reply chan error // buffered: the runner never waits for the caller
}

// New makes a supervisor and adopts the processes an earlier one left
// running (Driver.Adopt). Adopted processes are watched at once; one that
// exits before a Reconcile names it is shown as StateExited and started
// again when a Reconcile provides its Spec. A Reconcile that does not name
// it stops it.
func New(ctx context.Context, opts Options) (*Supervisor, error) {
	if opts.Driver == nil {
		return nil, errors.New("supervisor: no driver")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 35 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = opts.BackoffMin
	}
	if opts.MinRunTime <= 0 {
		opts.MinRunTime = 10 * time.Second
	}
	if opts.CrashLoopAfter <= 0 {
		opts.CrashLoopAfter = 5
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	adopted, err := opts.Driver.Adopt(ctx)
	if err != nil {
		return nil, fmt.Errorf("adopt running gateways: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{
		opts:      opts,
		driver:    opts.Driver,
		log:       opts.Logger,
		ctx:       sctx,
		cancel:    cancel,
		instances: make(map[string]*instance),
	}
	for _, p := range adopted {
		if _, dup := s.instances[p.Name()]; dup {
			p.Detach()
			continue
		}
		info := p.Info()
		in := s.newInstance(p.Name())
		in.proc = p
		in.ran = true
		in.st.Process = StateRunning
		in.st.PID = info.PID
		in.st.StartedAt = info.StartedAt
		in.st.Adopted = true
		in.st.SpecHash = p.Hash()
		s.instances[in.name] = in
		s.log.Info("adopted running gateway", "instance", in.name, "pid", info.PID)
		s.spawn(in)
	}
	return s, nil
}

func (s *Supervisor) newInstance(name string) *instance {
	return &instance{
		name: name,
		cmds: make(chan command),
		done: make(chan struct{}),
		st:   State{Name: name},
	}
}

func (s *Supervisor) spawn(in *instance) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(in.done)
		s.run(in)
	}()
}

// Reconcile makes the running instances those of desired: it starts the
// missing ones, stops (with the drain timeout) those not desired, and
// restarts those whose Spec.Hash changed. It returns when every stop and
// restart it asked for is done (or ctx ends; they go on then); starts
// happen in the background and show in States. Calls are serialized.
func (s *Supervisor) Reconcile(ctx context.Context, desired []Spec) error {
	want := make(map[string]Spec, len(desired))
	for _, sp := range desired {
		if err := sp.Validate(); err != nil {
			return err
		}
		if _, dup := want[sp.Name]; dup {
			return fmt.Errorf("%w: instance %s is desired twice", ErrInvalid, sp.Name)
		}
		sp.Args = append([]string(nil), sp.Args...)
		sp.Env = append([]string(nil), sp.Env...)
		want[sp.Name] = sp
	}
	s.reconcileMu.Lock()
	defer s.reconcileMu.Unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	type send struct {
		in  *instance
		cmd command
	}
	var sends []send
	for name, sp := range want {
		if in, ok := s.instances[name]; ok {
			sends = append(sends, send{in, command{kind: cmdUpdate, spec: sp}})
			continue
		}
		s.startNewLocked(sp)
	}
	for name, in := range s.instances {
		if _, ok := want[name]; !ok {
			sends = append(sends, send{in, command{kind: cmdStop}})
		}
	}
	s.mu.Unlock()

	errs := make([]error, len(sends))
	var wg sync.WaitGroup
	for i, sd := range sends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.send(ctx, sd.in, sd.cmd)
			if errors.Is(err, errGone) {
				err = nil
				if sd.cmd.kind == cmdUpdate {
					// The runner ended (a stop finished) before it took the
					// update: the instance is missing now.
					s.mu.Lock()
					if !s.closed {
						if cur, ok := s.instances[sd.in.name]; !ok || cur == sd.in {
							s.startNewLocked(sd.cmd.spec)
						}
					} else {
						err = ErrClosed
					}
					s.mu.Unlock()
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startNewLocked adds a desired instance that is not there and starts its
// runner, which starts the process at once. s.mu is held.
func (s *Supervisor) startNewLocked(sp Spec) {
	in := s.newInstance(sp.Name)
	in.spec = &sp
	in.st.Group = sp.Group
	in.st.Process = StateStarting
	s.instances[sp.Name] = in
	s.spawn(in)
}

var errGone = errors.New("instance runner ended")

// send hands cmd to in's runner and waits for its answer.
func (s *Supervisor) send(ctx context.Context, in *instance, cmd command) error {
	cmd.reply = make(chan error, 1)
	select {
	case in.cmds <- cmd:
	case <-in.done:
		return errGone
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-cmd.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Restart stops the instance's process (drain timeout, then SIGKILL) and
// starts it again at once, whatever its state (a pending backoff is cut
// short). An instance whose Spec is not known yet (adopted, exited, before
// any Reconcile) cannot be restarted.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	s.mu.Lock()
	in, ok := s.instances[name]
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	err := s.send(ctx, in, command{kind: cmdRestart})
	if errors.Is(err, errGone) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return err
}

// States returns every instance's state, by name.
func (s *Supervisor) States() []State {
	s.mu.Lock()
	out := make([]State, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, s.snapshotLocked(in))
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// State returns one instance's state.
func (s *Supervisor) State(name string) (State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[name]
	if !ok {
		return State{}, false
	}
	return s.snapshotLocked(in), true
}

// Close stops supervising and leaves every process running: the gateways
// keep serving, and the next supervisor on the same data adopts them. A
// stop or restart in progress is abandoned (its process got SIGTERM and
// drains by itself). Close waits for the supervising goroutines to end.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// snapshotLocked is in's state with the live parts filled in. s.mu is held.
func (s *Supervisor) snapshotLocked(in *instance) State {
	st := in.st
	if in.spec != nil {
		st.WantHash = in.spec.Hash()
	}
	st.Restarts = in.restarts
	if in.proc != nil {
		info := in.proc.Info()
		st.PID = info.PID
		if !info.StartedAt.IsZero() {
			st.StartedAt = info.StartedAt
		}
		st.Restarts += info.Restarts
		if st.Process == StateRunning && in.shortRuns >= s.opts.CrashLoopAfter &&
			time.Since(st.StartedAt) < s.opts.MinRunTime {
			st.Process = StateCrashLoop
		}
	}
	return st
}

// update changes in's state under s.mu and reports the result.
func (s *Supervisor) update(in *instance, f func(in *instance)) {
	s.mu.Lock()
	f(in)
	st := s.snapshotLocked(in)
	s.mu.Unlock()
	if s.opts.OnChange != nil {
		s.opts.OnChange(st)
	}
}

// backoff is the delay before the next start after shortRuns consecutive
// short runs: BackoffMin after a healthy run or the first short one, then
// doubling up to BackoffMax.
func (s *Supervisor) backoff(shortRuns int) time.Duration {
	d := s.opts.BackoffMin
	for i := 1; i < shortRuns && d < s.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, s.opts.BackoffMax)
}

// run supervises one instance until it is stopped or the supervisor closes.
func (s *Supervisor) run(in *instance) {
	var (
		timer *time.Timer
		wake  <-chan time.Time
	)
	schedule := func(d time.Duration, ok bool) {
		if timer != nil {
			timer.Stop()
			wake = nil
		}
		if ok {
			timer = time.NewTimer(d)
			wake = timer.C
		}
	}
	s.mu.Lock()
	needStart := in.proc == nil && in.spec != nil
	s.mu.Unlock()
	if needStart {
		schedule(s.start(in))
	}
	for {
		s.mu.Lock()
		proc := in.proc
		s.mu.Unlock()
		var exited <-chan struct{}
		if proc != nil {
			exited = proc.Done()
		}
		select {
		case <-s.ctx.Done():
			schedule(0, false)
			if proc != nil {
				proc.Detach()
			}
			return
		case <-exited:
			schedule(s.exited(in, proc))
		case <-wake:
			wake = nil
			schedule(s.start(in))
		case cmd := <-in.cmds:
			switch cmd.kind {
			case cmdStop:
				schedule(0, false)
				err := s.stop(in, proc)
				if err == nil {
					s.remove(in)
					cmd.reply <- nil
					return
				}
				cmd.reply <- err
			case cmdRestart:
				s.mu.Lock()
				hasSpec := in.spec != nil
				s.mu.Unlock()
				if !hasSpec {
					cmd.reply <- fmt.Errorf("instance %s: no spec yet (adopted, not reconciled)", in.name)
					continue
				}
				if s.replaceable(proc) {
					cmd.reply <- s.replace(in, proc)
					continue
				}
				if err := s.stop(in, proc); err != nil {
					cmd.reply <- err
					continue
				}
				schedule(s.start(in))
				cmd.reply <- nil
			case cmdUpdate:
				cmd.reply <- s.apply(in, proc, cmd.spec, schedule)
			}
		}
	}
}

// apply takes a new desired spec for a running runner.
func (s *Supervisor) apply(in *instance, proc Proc, sp Spec, schedule func(time.Duration, bool)) error {
	hash := sp.Hash()
	s.mu.Lock()
	hadSpec := in.spec != nil
	oldHash := ""
	if hadSpec {
		oldHash = in.spec.Hash()
	}
	pending := oldHash
	running := proc != nil
	if running {
		oldHash = proc.Hash()
	}
	in.spec = &sp
	in.st.Group = sp.Group
	s.mu.Unlock()

	switch {
	case running && oldHash == hash:
		if hadSpec && pending != hash {
			// Back to what runs: a replacement that failed is no longer
			// wanted, and its error no longer stands.
			s.update(in, func(in *instance) { in.st.LastError, in.failed = "", "" })
		}
		return nil // claimed (adopted) or unchanged
	case running && s.replaceable(proc):
		s.mu.Lock()
		failed, since := in.failed == hash, time.Since(in.failedAt)
		lastErr := in.st.LastError
		s.mu.Unlock()
		if failed && since < replaceRetryAfter {
			return fmt.Errorf("replace instance %s: not tried again until %s after it failed: %s", in.name, replaceRetryAfter, lastErr)
		}
		s.log.Info("gateway flags changed: replacing the process", "instance", in.name)
		return s.replace(in, proc)
	case running:
		s.log.Info("gateway flags changed: restarting", "instance", in.name)
		if err := s.stop(in, proc); err != nil {
			return err
		}
		s.mu.Lock()
		in.shortRuns = 0
		s.mu.Unlock()
		schedule(s.start(in))
	case !hadSpec || oldHash != hash:
		// Exited before we knew its spec, or waiting in backoff with
		// flags that are now replaced: start at once, afresh.
		s.mu.Lock()
		in.shortRuns = 0
		s.mu.Unlock()
		schedule(s.start(in))
	}
	return nil
}

// start starts in's process; on failure it returns the delay before the
// next try.
func (s *Supervisor) start(in *instance) (time.Duration, bool) {
	s.mu.Lock()
	spec := *in.spec
	s.mu.Unlock()
	s.update(in, func(in *instance) {
		in.st.Process = StateStarting
		in.st.NextStartAt = time.Time{}
	})
	p, err := s.driver.Start(s.ctx, spec)
	now := time.Now()
	if err != nil {
		if s.ctx.Err() != nil {
			return 0, false
		}
		var d time.Duration
		s.update(in, func(in *instance) {
			in.shortRuns++
			d = s.backoff(in.shortRuns)
			in.st.LastError = err.Error()
			in.st.NextStartAt = now.Add(d)
			in.st.Process = s.waitState(in)
		})
		s.log.Error("cannot start gateway", "instance", in.name, "error", err, "retry_in", d)
		return d, true
	}
	info := p.Info()
	s.update(in, func(in *instance) {
		in.proc = p
		if in.ran {
			in.restarts++
		}
		in.ran = true
		in.st.Process = StateRunning
		in.st.PID = info.PID
		in.st.StartedAt = info.StartedAt
		if in.st.StartedAt.IsZero() {
			in.st.StartedAt = now
		}
		in.st.LastError = ""
		in.st.Adopted = false
		in.st.SpecHash = p.Hash()
	})
	s.log.Info("gateway started", "instance", in.name, "pid", info.PID)
	return 0, false
}

func (s *Supervisor) waitState(in *instance) string {
	if in.shortRuns >= s.opts.CrashLoopAfter {
		return StateCrashLoop
	}
	return StateBackoff
}

// exited handles the end of in's process; it returns the delay before the
// next start.
func (s *Supervisor) exited(in *instance, proc Proc) (time.Duration, bool) {
	ex := proc.Exit()
	info := proc.Info()
	now := time.Now()
	var (
		d       time.Duration
		restart bool
		state   string
	)
	s.update(in, func(in *instance) {
		in.proc = nil
		in.restarts += info.Restarts
		in.st.PID = 0
		in.st.ExitedAt = now
		in.st.LastExit = ex.Reason
		in.st.Adopted = false
		if in.spec == nil {
			in.st.Process = StateExited
			state = StateExited
			return
		}
		switch {
		case ex.CrashLoop:
			in.shortRuns = max(in.shortRuns+1, s.opts.CrashLoopAfter)
		case info.StartedAt.IsZero() || now.Sub(info.StartedAt) < s.opts.MinRunTime:
			in.shortRuns++
		default:
			in.shortRuns = 0
		}
		d = s.backoff(in.shortRuns)
		restart = true
		in.st.NextStartAt = now.Add(d)
		in.st.Process = s.waitState(in)
		state = in.st.Process
	})
	switch state {
	case StateExited:
		s.log.Warn("adopted gateway exited; waiting for its spec", "instance", in.name, "exit", ex.Reason)
	case StateCrashLoop:
		s.log.Error("gateway is crash-looping", "instance", in.name, "exit", ex.Reason, "restart_in", d)
	default:
		s.log.Warn("gateway exited", "instance", in.name, "exit", ex.Reason, "restart_in", d)
	}
	return d, restart
}

// stop stops proc (if any) with the drain timeout.
func (s *Supervisor) stop(in *instance, proc Proc) error {
	if proc == nil {
		s.update(in, func(in *instance) {
			in.st.Process = StateStopped
			in.st.NextStartAt = time.Time{}
		})
		return nil
	}
	s.update(in, func(in *instance) { in.st.Process = StateStopping })
	s.log.Info("stopping gateway", "instance", in.name, "pid", proc.Info().PID)
	err := proc.Stop(s.ctx, s.opts.DrainTimeout)
	select {
	case <-proc.Done():
	default:
		if err == nil {
			err = errors.New("process still running")
		}
		err = fmt.Errorf("stop instance %s: %w", in.name, err)
		s.update(in, func(in *instance) {
			in.st.Process = StateRunning
			in.st.LastError = err.Error()
		})
		return err
	}
	ex := proc.Exit()
	info := proc.Info()
	s.update(in, func(in *instance) {
		in.proc = nil
		in.restarts += info.Restarts
		in.st.Process = StateStopped
		in.st.PID = 0
		in.st.ExitedAt = time.Now()
		in.st.LastExit = ex.Reason
		in.st.NextStartAt = time.Time{}
		in.st.Adopted = false
	})
	return nil
}

// remove tells the driver to forget a stopped instance, then drops it:
// in that order, so that a Reconcile that finds the name missing and
// starts it again never races with the clean-up.
func (s *Supervisor) remove(in *instance) {
	if err := s.driver.Remove(s.ctx, in.name); err != nil {
		s.log.Warn("cannot clean up after instance", "instance", in.name, "error", err)
	}
	s.mu.Lock()
	if s.instances[in.name] == in {
		delete(s.instances, in.name)
	}
	s.mu.Unlock()
}

// replaceRetryAfter is how long a spec whose replacement failed is not
// tried again (replace).
const replaceRetryAfter = 30 * time.Second

// replaceable says whether proc is replaced beside itself rather than
// stopped first.
func (s *Supervisor) replaceable(proc Proc) bool {
	_, ok := s.driver.(Replacer)
	return ok && s.opts.ZeroDowntime && proc != nil
}

// replace starts in's new process beside old, which hands over its
// sockets and exits once the new one is ready: then the new one is in's
// process. A new process that exits first, or is not ready within
// ReadyTimeout, is stopped, and old stays in's process (it serves on).
//
// A spec whose replacement failed is tried again only when it is given
// again replaceRetryAfter later or more: a rolling upgrade rolls back at
// once, and a node manager that got other desired instances meanwhile
// must not spend another ReadyTimeout on the same failure first.
func (s *Supervisor) replace(in *instance, old Proc) error {
	r := s.driver.(Replacer)
	s.mu.Lock()
	spec := *in.spec
	s.mu.Unlock()
	oldPID := old.Info().PID
	s.log.Info("replacing gateway", "instance", in.name, "pid", oldPID)
	np, err := r.StartReplacement(s.ctx, spec)
	if err != nil {
		err = fmt.Errorf("replace instance %s: %w; pid %d serves on", in.name, err, oldPID)
		s.log.Error("gateway not replaced", "instance", in.name, "error", err)
		s.update(in, func(in *instance) {
			in.st.LastError = err.Error()
			in.failed, in.failedAt = spec.Hash(), time.Now()
		})
		return err
	}
	newPID := np.Info().PID
	timer := time.NewTimer(s.opts.ReadyTimeout)
	defer timer.Stop()
	draining := false
wait:
	for {
		select {
		case <-old.Done():
			break wait
		case <-np.Done():
			draining = draining || r.Serving(np)
			err = fmt.Errorf("replace instance %s: the new process (pid %d) exited before it was ready (%s); pid %d serves on", in.name, newPID, np.Exit().Reason, oldPID)
			if draining {
				// The old one drains and no longer accepts: the instance
				// is down until it is started again.
				err = fmt.Errorf("replace instance %s: the new process (pid %d) exited (%s) while pid %d drained", in.name, newPID, np.Exit().Reason, oldPID)
			}
			// Exited, but the driver may still hold it (a unit systemd
			// keeps as failed).
			if serr := np.Stop(s.ctx, time.Second); serr != nil {
				s.log.Error("cannot clean up after the new process", "instance", in.name, "pid", newPID, "error", serr)
			}
			break wait
		case <-timer.C:
			if !draining && r.Serving(np) {
				// Ready: the old one drains, which takes as long as its
				// longest request, up to its own drain timeout.
				draining = true
				s.log.Info("new process serving; waiting for the old one to drain", "instance", in.name, "pid", newPID, "previous_pid", oldPID)
				timer.Reset(s.opts.DrainTimeout)
				continue
			}
			if draining {
				s.log.Warn("the old process did not drain in time: stopping it", "instance", in.name, "pid", oldPID)
				if serr := old.Stop(s.ctx, time.Second); serr != nil {
					s.log.Error("cannot stop the old process", "instance", in.name, "pid", oldPID, "error", serr)
				}
				break wait
			}
			err = fmt.Errorf("replace instance %s: the new process (pid %d) was not ready within %s; pid %d serves on", in.name, newPID, s.opts.ReadyTimeout, oldPID)
			if serr := np.Stop(s.ctx, s.opts.DrainTimeout); serr != nil {
				s.log.Error("cannot stop the new process", "instance", in.name, "pid", newPID, "error", serr)
			}
			break wait
		case <-s.ctx.Done():
			// Both go on; the next supervisor adopts the old one (its pid
			// file is still the instance's) and the new one finishes the
			// takeover by itself.
			np.Detach()
			return ErrClosed
		}
	}
	if err != nil {
		s.log.Error("gateway not replaced", "instance", in.name, "error", err)
		s.update(in, func(in *instance) {
			in.st.LastError = err.Error()
			in.failed, in.failedAt = spec.Hash(), time.Now()
		})
		return err
	}
	if perr := r.Promote(np); perr != nil {
		s.log.Warn("cannot record the new process: it will not be adopted after a restart", "instance", in.name, "error", perr)
	}
	ex := old.Exit()
	info := old.Info()
	now := time.Now()
	s.update(in, func(in *instance) {
		in.proc = np
		in.restarts += info.Restarts + 1
		in.shortRuns = 0
		in.st.Process = StateRunning
		in.st.PID = newPID
		in.st.StartedAt = np.Info().StartedAt
		if in.st.StartedAt.IsZero() {
			in.st.StartedAt = now
		}
		in.st.ExitedAt = now
		in.st.LastExit = ex.Reason
		in.st.LastError = ""
		in.st.Adopted = false
		in.st.SpecHash = np.Hash()
		in.failed = ""
	})
	s.log.Info("gateway replaced without downtime", "instance", in.name, "pid", newPID, "previous_pid", oldPID)
	return nil
}
