package external

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/policy/external/pluginpb"
)

const (
	// minRestart and maxRestart bound the wait between two starts of a
	// plugin: the wait doubles with every start that is not followed by
	// a successful call, so that a crash-looping plugin costs a start a
	// second at most, and far fewer as it keeps failing.
	minRestart = time.Second
	maxRestart = 30 * time.Second
	// startTimeout bounds a start: the process must complete go-plugin's
	// handshake in that time.
	startTimeout = 10 * time.Second
	// startWait is how long a new deployment waits for the first start,
	// so that its first requests find the plugin ready.
	startWait = 5 * time.Second
	// stuckAfter without an answer while calls time out, the process is
	// taken for stuck and restarted: a plugin that no longer answers is as
	// good as dead. It is long enough that a plugin slowed down by a busy
	// machine, which still answers some calls, is left alone.
	stuckAfter = 5 * time.Second
	// logEvery spaces the warnings of failed calls: a dead plugin must
	// not flood the log with one line per request.
	logEvery = time.Second
)

// Failure reasons, as counted in metrics.
const (
	reasonTimeout = "timeout"
	reasonCrash   = "crash"
	reasonError   = "error"
)

var errClosed = errors.New("the plugin was stopped: its configuration is no longer deployed")

// process runs one plugin binary with one configuration: the resource
// every policy with that binary and configuration shares, across
// deployments. It keeps one live instance (a child process and its gRPC
// client) and replaces it when it dies.
type process struct {
	name, path string
	log        hclog.Logger

	cur atomic.Pointer[instance]
	// unanswered is the number of starts since a call last succeeded.
	unanswered atomic.Int32
	lastLog    atomic.Int64
	stuckAfter time.Duration

	mu      sync.Mutex
	started time.Time
	closed  bool
}

// instance is one run of the plugin. Its fields are set before ready is
// closed and not changed after.
type instance struct {
	ready  chan struct{}
	client *plugin.Client
	rpc    pluginpb.PolicyClient
	err    error
	// answered is when the instance last answered (or started), in
	// nanoseconds since the epoch.
	answered atomic.Int64
	// stuck marks an instance that stopped answering.
	stuck atomic.Bool
}

// newProcess starts the plugin at path and waits a little for it.
func newProcess(name, path string, log hclog.Logger) *process {
	p := &process{name: name, path: path, log: log, stuckAfter: stuckAfter}
	if err := p.replace(nil); err == nil {
		in := p.cur.Load()
		select {
		case <-in.ready:
		case <-time.After(startWait):
			p.log.Warn("plugin is slow to start; requests apply the failure mode until it answers")
		}
	}
	return p
}

// check calls the plugin, starting it when it is not running. reason
// says why a call failed.
func (p *process) check(ctx context.Context, req *pluginpb.CheckRequest) (v *pluginpb.Verdict, reason string, err error) {
	in, err := p.instance(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, reasonTimeout, fmt.Errorf("waiting for the plugin to start: %w", err)
		}
		return nil, reasonCrash, err
	}
	v, err = in.rpc.Check(ctx, req)
	if err == nil {
		// Shared by every request: written only when it changes enough
		// to matter, so that concurrent calls do not contend on it.
		now := time.Now().UnixNano()
		if now-in.answered.Load() > int64(10*time.Millisecond) {
			in.answered.Store(now)
		}
		if p.unanswered.Load() != 0 {
			p.unanswered.Store(0)
		}
		return v, "", nil
	}
	switch {
	case ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded:
		silent := time.Duration(time.Now().UnixNano() - in.answered.Load())
		if silent > p.stuckAfter && !in.stuck.Swap(true) {
			p.log.Warn("plugin stopped answering; restarting it", "silent", silent.Round(time.Millisecond))
		}
		return nil, reasonTimeout, err
	case in.client.Exited() || status.Code(err) == codes.Unavailable:
		return nil, reasonCrash, err
	}
	return nil, reasonError, err
}

// instance returns a live instance, waiting within ctx for one to start.
func (p *process) instance(ctx context.Context) (*instance, error) {
	for {
		in := p.cur.Load()
		if in != nil {
			select {
			case <-in.ready:
			default:
				select {
				case <-in.ready:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if in.err == nil && !in.stuck.Load() && !in.client.Exited() {
				return in, nil
			}
		}
		if err := p.replace(in); err != nil {
			return nil, err
		}
	}
}

// replace starts a new instance in place of old, unless another caller
// already did or the last start was too recent.
func (p *process) replace(old *instance) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return errClosed
	case p.cur.Load() != old:
		return nil
	}
	if wait := p.backoff() - time.Since(p.started); wait > 0 {
		cause := "it exited"
		switch {
		case old != nil && old.err != nil:
			cause = old.err.Error()
		case old != nil && old.stuck.Load():
			cause = "it stopped answering"
		}
		return fmt.Errorf("plugin %s is down (%s); next start in %s", p.name, cause, wait.Round(time.Millisecond))
	}
	p.started = time.Now()
	p.unanswered.Add(1)
	in := &instance{ready: make(chan struct{})}
	p.cur.Store(in)
	go p.start(in)
	if old != nil {
		go old.stop()
	}
	return nil
}

// backoff is the wait since the last start before the next one.
func (p *process) backoff() time.Duration {
	n := p.unanswered.Load()
	if n == 0 {
		return 0
	}
	d := minRestart << min(n-1, 5)
	return min(d, maxRestart)
}

func (p *process) start(in *instance) {
	defer close(in.ready)
	out := p.log.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
	in.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginpb.Handshake,
		Plugins:          plugin.PluginSet{pluginpb.Name: &pluginpb.Plugin{}},
		Cmd:              exec.Command(p.path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           p.log,
		StartTimeout:     startTimeout,
		// A plugin is someone else's code: it gets its configuration,
		// not the gateway's environment and the secrets in it.
		SkipHostEnv: true,
		// What the plugin prints once serving reaches the gateway's
		// log; go-plugin would drop it.
		SyncStdout: out,
		SyncStderr: out,
	})
	in.err = p.connect(in)
	if in.err != nil {
		in.client.Kill()
		p.log.Error("plugin did not start", "error", in.err)
		return
	}
	in.answered.Store(time.Now().UnixNano())
	p.log.Info("plugin started", "pid", in.client.ReattachConfig().Pid)
}

func (p *process) connect(in *instance) error {
	rpc, err := in.client.Client()
	if err != nil {
		return fmt.Errorf("starting %s: %w", p.path, err)
	}
	raw, err := rpc.Dispense(pluginpb.Name)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", p.name, err)
	}
	pc, ok := raw.(pluginpb.PolicyClient)
	if !ok {
		return fmt.Errorf("plugin %s: unexpected client %T", p.name, raw)
	}
	in.rpc = pc
	return nil
}

// stop ends the instance's process, if it is still running.
func (in *instance) stop() {
	<-in.ready
	in.client.Kill()
}

// Close stops the plugin: no deployment uses it any more.
func (p *process) Close() error {
	p.mu.Lock()
	p.closed = true
	in := p.cur.Load()
	p.mu.Unlock()
	if in != nil {
		in.stop()
	}
	return nil
}

// warn logs a failed call, at most once per logEvery.
func (p *process) warn(reason string, err error) {
	now := time.Now().UnixNano()
	last := p.lastLog.Load()
	if now-last < int64(logEvery) || !p.lastLog.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("plugin call failed", "reason", reason, "error", err)
}
