package localapi

import (
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

// DefaultAddress is where a node manager serves the local API. Loopback
// only: the API hands out deployments to whoever holds an instance secret
// and lists instances to anyone who can connect.
const DefaultAddress = "127.0.0.1:8091"

// DefaultURL is the base URL of the local API at DefaultAddress.
const DefaultURL = "http://" + DefaultAddress

// EnvInstanceSecret is the environment variable through which a node
// manager gives each gateway it starts its own secret. The environment
// rather than a flag, so that the secret does not show in process lists.
const EnvInstanceSecret = "GATEHOUSE_INSTANCE_SECRET"

// Paths of the local API.
const (
	Prefix         = "/v1"
	PathDeployment = Prefix + "/deployment"
	// PathInstances lists instances; PathInstances + "/{name}/report",
	// PathInstances + "/{name}/traffic" and PathInstances +
	// "/{name}/restart" act on one.
	PathInstances = Prefix + "/instances"
)

// Query parameters of the blocking query.
const (
	QueryInstance = "instance"
	QueryIndex    = "index"
	QueryWait     = "wait"
)

// HeaderAuthorization carries "Bearer <instance secret>" on a gateway's
// calls, and "Bearer <operator token>" on an operator's.
const (
	HeaderAuthorization = "Authorization"
	BearerPrefix        = "Bearer "
)

// TokenFile is the file of the node manager's data directory holding the
// operator token (hex, mode 0600) that the state-changing operator calls
// (restart) must carry. The node manager makes it on its first run.
const TokenFile = "local-api.token"

// Bounds of a blocking query's wait, as the agent API has them: the server
// uses DefaultWait when none is given and caps it at MaxWait, then adds up
// to 1/16 of jitter so that gateways do not all ask again at once.
const (
	DefaultWait = 30 * time.Second
	MaxWait     = 5 * time.Minute
)

// DeploymentAnswer answers GET /v1/deployment. Index is opaque: the node
// manager's counter of stored deployments, which the client asks again
// with; Deployment is nil while the group has none.
type DeploymentAnswer struct {
	Index      uint64             `json:"index"`
	Deployment *deploy.Deployment `json:"deployment,omitempty"`
	// Gossip is how the instance joins its group's gossip (docs/gossip.md):
	// its peers' addresses and the group's keys; nil when it has none.
	Gossip *Gossip `json:"gossip,omitempty"`
}

// Gossip is an instance's gossip membership: Seeds are the addresses of
// the group's other instances ("IP:port"), Keys the group's keys (base64,
// the primary first).
type Gossip struct {
	Seeds []string `json:"seeds"`
	Keys  []string `json:"keys"`
}

// Peer is a member of the group as the gateway's gossip sees it.
type Peer struct {
	Name string `json:"name"`
	// State is alive, dead or left (docs/gossip.md: memberlist does not
	// expose its suspect state).
	State      string    `json:"state"`
	Deployment uint64    `json:"deployment,omitempty"`
	Checksum   string    `json:"checksum,omitempty"`
	Since      time.Time `json:"since,omitzero"`
}

// Report is the body of PUT /v1/instances/{name}/report: what the gateway
// runs now. AppliedDeployment is 0 and AppliedChecksum empty until it has
// applied a deployment; LastError is the last refused deployment or failed
// apply, empty once a later one applied.
type Report struct {
	AppliedDeployment uint64 `json:"applied_deployment"`
	AppliedChecksum   string `json:"applied_checksum"`
	Ready             bool   `json:"ready"`
	LastError         string `json:"last_error"`
	// Peers is the gateway's gossip view of its group.
	Peers []Peer `json:"peers,omitempty"`
	// GatewayVersion and FeatureLevel are the running gateway's binary
	// version and the highest configuration feature level it applies;
	// absent from gateways older than these fields.
	GatewayVersion string `json:"gateway_version,omitempty"`
	FeatureLevel   int    `json:"feature_level,omitempty"`
	// Settings are the dynamic settings the gateway runs; nil when it
	// runs as started.
	Settings *Settings `json:"settings,omitempty"`
}

// GatewayPathSettings is the gateway's control endpoint, on its status
// address: PUT, with "Bearer <instance secret>", a Settings body to
// replace its dynamic settings at run time (204). Only gateways under a
// node manager serve it.
const GatewayPathSettings = "/control/settings"

// Settings are a gateway's dynamic settings (docs/gateway.md#dynamic-settings).
// The zero value is the gateway as it was started.
type Settings struct {
	// LogLevel is trace, debug, info, warn or error; "" the level the
	// gateway was started with.
	LogLevel string `json:"log_level,omitempty"`
	// AccessLogPercent is 0 with the access log off, else the percentage
	// (1 to 100) of exchanges logged, spread evenly.
	AccessLogPercent int `json:"access_log_percent,omitempty"`
	// TraceRoute ("route" or "service/route") is traced until TraceUntil.
	TraceRoute string    `json:"trace_route,omitempty"`
	TraceUntil time.Time `json:"trace_until,omitzero"`
}

// ProcessState is the supervisor's state of an instance's process.
type ProcessState string

// Process states. A node manager may add others; clients show unknown
// ones as they are.
const (
	// ProcessStarting: started, not yet reported ready.
	ProcessStarting ProcessState = "starting"
	ProcessRunning  ProcessState = "running"
	// ProcessBackoff: exited and waiting before the next restart.
	ProcessBackoff ProcessState = "backoff"
	// ProcessStopped: not running, on purpose (removed or shutting down).
	ProcessStopped ProcessState = "stopped"
)

// InstanceView is one local instance as GET /v1/instances shows it: what
// the supervisor knows of the process and what the gateway last reported.
type InstanceView struct {
	Name     string       `json:"name"`
	Group    string       `json:"group"`
	Process  ProcessState `json:"process"`
	PID      int          `json:"pid,omitempty"`
	Restarts int          `json:"restarts"`
	// StartedAt is when the current process started; zero when none runs.
	StartedAt time.Time `json:"started_at,omitzero"`
	// LastExit says how the last process ended ("exit status 1"), and
	// NextStartAt when a process in backoff or crash-loop starts again.
	LastExit    string    `json:"last_exit,omitempty"`
	NextStartAt time.Time `json:"next_start_at,omitzero"`
	// DesiredDeployment is the number of the group's deployment the node
	// manager holds; AppliedDeployment and the fields after it are from the
	// gateway's last report (ReportedAt).
	DesiredDeployment uint64    `json:"desired_deployment,omitempty"`
	AppliedDeployment uint64    `json:"applied_deployment,omitempty"`
	AppliedChecksum   string    `json:"applied_checksum,omitempty"`
	Ready             bool      `json:"ready"`
	LastError         string    `json:"last_error,omitempty"`
	ReportedAt        time.Time `json:"reported_at,omitzero"`
	// Peers is the gateway's gossip view of its group, from the same
	// report.
	Peers []Peer `json:"peers,omitempty"`
	// GatewayVersion and FeatureLevel are the running gateway's, from the
	// same report.
	GatewayVersion string `json:"gateway_version,omitempty"`
	FeatureLevel   int    `json:"feature_level,omitempty"`
	// Settings are the dynamic settings the gateway reports it runs, and
	// DesiredSettings those its node manager delivers to it.
	Settings        *Settings `json:"settings,omitempty"`
	DesiredSettings *Settings `json:"desired_settings,omitempty"`
}

// InstanceList answers GET /v1/instances.
type InstanceList struct {
	Instances []InstanceView `json:"instances"`
}

// ErrorBody is the body of every error answer, as in the admin API.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error describes what went wrong; Code is stable, Message is for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
