package policy

import (
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Phase is a step of a request's life at which policies run. Phases run in
// this order; within a phase, policies run by their kind's Priority,
// higher first.
type Phase uint8

const (
	// PhaseRewrite runs first, before anything is decided on the request:
	// request-id, proxy-rewrite.
	PhaseRewrite Phase = iota
	// PhaseAccess decides whether the request may pass and who sends it:
	// ip-restriction, cors preflights, the authentication policies,
	// request-size-limit, rate-limit, external policies.
	PhaseAccess
	// PhaseBeforeProxy shapes what the upstream receives: request-headers,
	// traffic-split.
	PhaseBeforeProxy
	// PhaseResponse edits the response head before it goes to the client:
	// response-headers, cors.
	PhaseResponse
	// PhaseLog sees the finished exchange: http-log.
	PhaseLog
	numPhases
)

var phaseNames = [numPhases]string{"rewrite", "access", "before-proxy", "response", "log"}

func (p Phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	return "unknown"
}

// Policy is one configured policy, built once per deployment and shared by
// every request of the routes it applies to, on every engine thread: Run
// must not change the policy itself; counters and queues it owns are
// synchronised by the policy.
type Policy interface {
	// Run acts on the request in its kind's phase. It returns false when
	// it answered the request itself (Context.Reject or Context.Respond):
	// the chain stops and the upstream is not called.
	Run(c *Context) bool
}

// Responder is a Policy that also acts when the response head is known
// (the upstream's, or the gateway's own answer), in PhaseResponse: it may
// only edit the response headers.
type Responder interface {
	Respond(c *Context, status int)
}

// Logger is a Policy that also sees the finished exchange, in PhaseLog. It
// must not block: it runs on the engine's thread.
type Logger interface {
	Log(c *Context, o *Outcome)
}

// Outcome is how an exchange ended.
type Outcome struct {
	Status int
	// Duration is from the request head to the end of the response;
	// UpstreamTime from sending the request to the upstream's response
	// head (0 when the upstream was not called).
	Duration, UpstreamTime time.Duration
	BytesIn, BytesOut      int64
}

// Kind is a kind of policy: the name configurations use, where it runs,
// and how it is built.
type Kind struct {
	Name     string
	Phase    Phase
	Priority int
	// Blocking kinds may wait on I/O in Run (external policies): routes
	// whose chain holds one are served on the goroutine-per-connection
	// engine, where a wait holds one goroutine rather than an event loop.
	Blocking bool
	// LimitsBody kinds may call Context.LimitBody: a chunked request on
	// their routes is read by the goroutine engine, which can count it
	// before it goes upstream.
	LimitsBody bool
	// New checks config and builds the policy. Its errors are
	// ConfigErrors with paths relative to config ("limits[0].window").
	New func(config map[string]any, env *Env) (Policy, error)
}

// Env is what a Kind may use to build a policy. Validation builds policies
// with a partial Env (no group, no resources kept), so New must not start
// anything: work that outlives the build goes through Resources.
type Env struct {
	Logger hclog.Logger
	// Consumers are the configuration's consumers with their credentials.
	Consumers *Consumers
	// Upstream resolves an upstream name of the configuration to the
	// engine's handle for it; ok is false for an unknown name.
	Upstream func(name string) (handle any, ok bool)
	// Group exchanges messages with the other instances of the gateway's
	// group; nil for a standalone gateway.
	Group GroupChannel
	// Resources keeps what a policy owns across deployments (counters,
	// queues, plugin processes); nil during validation.
	Resources Resources
	// PluginDir is the directory of external policy binaries.
	PluginDir string
	// Metrics counts what policies drop or fail at; nil counts nothing.
	Metrics Metrics
}

// Metrics is where policies count the events an operator alerts on.
type Metrics interface {
	// LogDropped counts log entries a policy could not deliver (its
	// buffer was full, or its endpoint kept failing).
	LogDropped(policy string, n int)
	// ExternalFailed counts calls of an external policy that failed;
	// reason is "timeout", "crash" or "error".
	ExternalFailed(plugin, reason string)
}

// GroupChannel carries small messages between the instances of a group,
// best effort (the gossip layer).
type GroupChannel interface {
	// Broadcast sends msg to every other live instance of the group.
	Broadcast(topic string, msg []byte)
	// Subscribe calls fn for every message of topic from another
	// instance; from names the instance. fn must not block. cancel ends
	// the subscription (when the policy's resources are closed).
	Subscribe(topic string, fn func(from string, msg []byte)) (cancel func())
}

// Resources hands out long-lived things by key, so that a deployment that
// keeps a policy's configuration keeps its state, and a deployment that
// drops it closes them.
type Resources interface {
	// Get returns the resource under key, made by make if this build is the
	// first to ask for it. Resources no build asked for since the previous
	// one are closed once the new configuration is in use.
	Get(key string, make func() (io.Closer, error)) (io.Closer, error)
}
