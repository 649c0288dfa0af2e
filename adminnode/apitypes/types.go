package apitypes

import (
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

// Prefix is the path every API route starts with.
const Prefix = "/api/v1"

// Error codes of ErrorBody, with the HTTP status each comes with.
const (
	CodeBadRequest           = "bad_request"           // 400
	CodeUnauthorized         = "unauthorized"          // 401
	CodeForbidden            = "forbidden"             // 403
	CodeNotFound             = "not_found"             // 404
	CodeMethodNotAllowed     = "method_not_allowed"    // 405
	CodeConflict             = "conflict"              // 409
	CodeNothingToDeploy      = "nothing_to_deploy"     // 409
	CodeTooLarge             = "payload_too_large"     // 413
	CodeUnsupportedMedia     = "unsupported_media"     // 415
	CodeInvalidConfig        = "invalid_config"        // 422
	CodePreconditionRequired = "precondition_required" // 428
	CodeTooManyRequests      = "too_many_requests"     // 429
	CodeInternal             = "internal"              // 500
	CodeUnavailable          = "unavailable"           // 503
)

// CodeUnrunnable (422) refuses a strict deploy of a configuration that
// instances of the group lack something to run (a plugin, a feature
// level).
const CodeUnrunnable = "unrunnable_config"

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error says what went wrong. Field names the offending request field in
// the form of validation errors ("services[0].routes[1].paths[0]") when
// there is one; Errors lists every error of an invalid configuration.
type Error struct {
	Code      string       `json:"code"`
	Message   string       `json:"message"`
	Field     string       `json:"field,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
}

// FieldError is one error of a configuration, at a field path; Line is the
// line of the submitted document when known.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
}

// Health is the body of GET /health, the one route without authentication.
type Health struct {
	Status string `json:"status"`
	Domain string `json:"domain"`
}

// Domain describes the domain: what a node manager pins and what gateways
// verify deployments with.
type Domain struct {
	Name                  string    `json:"name"`
	CreatedAt             time.Time `json:"created_at"`
	CAFingerprint         string    `json:"ca_fingerprint"`
	SigningKey            string    `json:"signing_key"`
	SigningKeyFingerprint string    `json:"signing_key_fingerprint"`
}

// LoginRequest is the body of POST /auth/login.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// LoginResponse carries a bearer token for the Authorization header.
type LoginResponse struct {
	User      string    `json:"user"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// WhoAmI is the body of GET /auth/whoami.
type WhoAmI struct {
	User string `json:"user"`
	// TokenID is the ID of the token the request came with.
	TokenID   string     `json:"token_id"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Permissions are those held on the whole domain; Bindings say which
	// groups other permissions apply to.
	Permissions []string      `json:"permissions"`
	Bindings    []RoleBinding `json:"bindings"`
}

// PasswordChange is the body of PUT /auth/password (one's own password).
type PasswordChange struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// Token kinds.
const (
	TokenKindLogin = "login"
	TokenKindAPI   = "api"
)

// TokenCreate is the body of POST /tokens. TTL is a Go duration ("720h");
// empty means the token does not expire. User defaults to the caller;
// another user's token needs user:admin.
type TokenCreate struct {
	Name string `json:"name"`
	TTL  string `json:"ttl,omitempty"`
	User string `json:"user,omitempty"`
}

// Token describes a token; its secret is never shown again after creation.
type Token struct {
	ID         string     `json:"id"`
	User       string     `json:"user"`
	Name       string     `json:"name,omitempty"`
	Kind       string     `json:"kind"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	Revoked    bool       `json:"revoked"`
}

// TokenCreated is the answer to POST /tokens: the only time the bearer
// secret is shown.
type TokenCreated struct {
	Token
	Secret string `json:"secret"`
}

// Group is a set of instances serving the same configuration. On PUT,
// Name and Version are ignored (the path and If-Match say them).
type Group struct {
	Name        string            `json:"name"`
	Type        string            `json:"type,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Description string            `json:"description,omitempty"`
	// Environment resolves the placeholders of the group's deployments.
	Environment string    `json:"environment,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
	Version     uint64    `json:"version,omitempty"`
}

// GroupSummary is the body of GET /groups/{group}/summary.
type GroupSummary struct {
	Group             string `json:"group"`
	CurrentDeployment uint64 `json:"current_deployment"`
	CurrentChecksum   string `json:"current_checksum,omitempty"`
	Instances         int    `json:"instances"`
	// ByStatus counts instances by status; every status is present.
	ByStatus map[string]int `json:"by_status"`
	// UpToDate instances run the current deployment; Rollout is
	// "UpToDate/Instances".
	UpToDate int    `json:"up_to_date"`
	Rollout  string `json:"rollout"`
	Complete bool   `json:"complete"`
	// Deployments says which instances run which deployment number ("0":
	// none reported).
	Deployments map[string][]string `json:"deployments"`
	// Drift lists the instances that have run another deployment than the
	// current one for longer than the drift grace period.
	Drift []Drift `json:"drift"`
	// Unreachable lists the instances their peers' gossip declares dead.
	Unreachable []string `json:"unreachable"`
	// Versions is the mix of gateway versions the instances run.
	Versions []VersionCount `json:"versions"`
	// Skipped are the instances the current deployment, a partial one,
	// was not deployed to.
	Skipped []SkippedInstance `json:"skipped,omitempty"`
}

// VersionCount is the instances that run one gateway version and feature
// level; Version "" is not reported yet (no heartbeat since the gateway
// started, or an older node manager).
type VersionCount struct {
	Version      string   `json:"version"`
	FeatureLevel int      `json:"feature_level,omitempty"`
	Instances    []string `json:"instances"`
}

// Host is a machine running a node manager.
type Host struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
	// Traffic is read-only: the host's traffic batches, once one came.
	Traffic *HostTraffic `json:"traffic,omitempty"`
	// Capabilities is read-only: what the host's node manager last
	// reported its gateways can run.
	Capabilities *HostCapabilities `json:"capabilities,omitempty"`
}

// HostCapabilities is what the gateways of a host can run, as its node
// manager reports it in heartbeats: the gateway binary's version, the
// configuration format level it understands (deploy.FeatureLevel) and the
// external policy plugins present in its plugin directory. Validation and
// deploy warn when a configuration needs what a host lacks
// (docs/deployments.md#what-hosts-can-run).
// Since is when the host began to report them as they are.
type HostCapabilities struct {
	GatewayVersion string    `json:"gateway_version,omitempty"`
	FeatureLevel   int       `json:"feature_level,omitempty"`
	PluginDir      string    `json:"plugin_dir,omitempty"`
	Plugins        []string  `json:"plugins"`
	Since          time.Time `json:"since,omitzero"`
}

// Instance is one gateway process of a group on a host: its desired state
// (written by operators) and, read-only, its status and last observed
// state.
type Instance struct {
	Name         string `json:"name"`
	Group        string `json:"group"`
	Host         string `json:"host"`
	Listen       string `json:"listen,omitempty"`
	TLSListen    string `json:"tls_listen,omitempty"`
	StatusListen string `json:"status_listen,omitempty"`
	// GossipListen is where the gateway gossips with its group's peers
	// (":7946"-style; a free port from 7946 up is picked on the host when
	// empty).
	GossipListen string `json:"gossip_listen,omitempty"`
	// Status is derived: Pending, Healthy, Only Heartbeat, Lost
	// Connection, Offline.
	Status   string         `json:"status,omitempty"`
	Observed *InstanceState `json:"observed,omitempty"`
	// UnreachableBy names the group's peers whose gossip declares this
	// instance dead: a detail beside Status, seen within seconds where
	// heartbeats take LostAfter.
	Unreachable   bool     `json:"unreachable,omitempty"`
	UnreachableBy []string `json:"unreachable_by,omitempty"`
	// RestartGeneration is read-only: how many restarts were asked of the
	// admin node (POST /instances/{name}/restart).
	RestartGeneration uint64    `json:"restart_generation,omitempty"`
	CreatedAt         time.Time `json:"created_at,omitzero"`
	UpdatedAt         time.Time `json:"updated_at,omitzero"`
}

// InstanceRestart is the answer (202) to POST /instances/{name}/restart:
// the restart is handed to the instance's node manager, which restarts
// the gateway when it next hears from the admin node. It is done when GET
// Wait shows the instance ready with another PID than PreviousPID (or more
// Restarts than PreviousRestarts) in a heartbeat after RequestedAt.
type InstanceRestart struct {
	Instance         string    `json:"instance"`
	Group            string    `json:"group"`
	Host             string    `json:"host"`
	Generation       uint64    `json:"generation"`
	RequestedAt      time.Time `json:"requested_at"`
	PreviousPID      int       `json:"previous_pid,omitempty"`
	PreviousRestarts int       `json:"previous_restarts,omitempty"`
	Wait             string    `json:"wait"`
}

// InstanceState is what the instance's node manager last reported.
type InstanceState struct {
	LastHeartbeat     time.Time `json:"last_heartbeat"`
	AppliedDeployment uint64    `json:"applied_deployment,omitempty"`
	AppliedChecksum   string    `json:"applied_checksum,omitempty"`
	Ready             bool      `json:"ready"`
	Process           string    `json:"process,omitempty"`
	PID               int       `json:"pid,omitempty"`
	Restarts          int       `json:"restarts,omitempty"`
	LastError         string    `json:"last_error,omitempty"`
	// Peers is the instance's gossip view of its group.
	Peers []GossipPeer `json:"peers,omitempty"`
	// GatewayVersion and FeatureLevel are the running gateway's binary
	// version and the highest configuration feature level it applies.
	GatewayVersion string `json:"gateway_version,omitempty"`
	FeatureLevel   int    `json:"feature_level,omitempty"`
	// Settings are the dynamic settings the gateway reports it runs; nil
	// when it runs as started.
	Settings *AgentGatewaySettings `json:"settings,omitempty"`
	// Release is the gateway release the process runs ("" the node
	// manager's own binary); RestartGeneration, the instance's restart
	// generation it was started under (a restart is done once it is
	// Instance.RestartGeneration); Pending, that the node manager has
	// still to replace the process as last told, or failed to (LastError).
	Release           string `json:"release,omitempty"`
	RestartGeneration uint64 `json:"restart_generation,omitempty"`
	Pending           bool   `json:"pending,omitempty"`
}

// GossipPeer is one member of a group as another member's gossip sees it.
type GossipPeer struct {
	Name string `json:"name"`
	// State is alive, dead or left (docs/gossip.md: memberlist does not
	// expose its suspect state).
	State      string    `json:"state"`
	Deployment uint64    `json:"deployment,omitempty"`
	Checksum   string    `json:"checksum,omitempty"`
	Since      time.Time `json:"since,omitzero"`
}

// GossipKeyRotation is the answer to POST /groups/{group}/gossip-key. Keys
// themselves are never shown.
type GossipKeyRotation struct {
	Group string `json:"group"`
	// Keys is how many keys the group's gateways accept; the new one is
	// the primary.
	Keys int `json:"keys"`
}

// PublishKeyExport is the answer to POST /publish-key/export: the
// domain's publish keys, which open every deployment published to object
// storage (docs/object-storage.md), the one sealing first. Secret: only a
// domain admin gets it, and each export is audited.
type PublishKeyExport struct {
	Domain string   `json:"domain"`
	Keys   [][]byte `json:"keys"`
	// IDs name the keys as sealed objects and errors do.
	IDs []string `json:"ids"`
}

// PublishKeyRotation is the answer to POST /publish-key/rotate: the IDs of
// the keys now accepted, the new one (which seals) first. Keys
// themselves are never shown.
type PublishKeyRotation struct {
	IDs []string `json:"ids"`
}

// Drift is an instance running another deployment than its group's
// current one for longer than the grace period.
type Drift struct {
	Instance   string    `json:"instance"`
	Deployment uint64    `json:"deployment"`
	Since      time.Time `json:"since"`
}

// Draft is a group's configuration being edited. Secrets (consumer
// credentials, certificate keys) read as deploy.Redacted; writing that
// value back keeps the stored secret (docs/admin-api.md#secrets). The
// draft's Version is also its ETag.
type Draft struct {
	Group     string        `json:"group"`
	Version   uint64        `json:"version"`
	UpdatedAt time.Time     `json:"updated_at,omitzero"`
	UpdatedBy string        `json:"updated_by,omitempty"`
	Config    deploy.Config `json:"config"`
}

// Validation is the answer to POST /groups/{group}/draft/validate.
type Validation struct {
	Valid    bool         `json:"valid"`
	Checksum string       `json:"checksum,omitempty"`
	Errors   []FieldError `json:"errors"`
	// Warnings list what a valid configuration needs that instances of
	// the group lack; deploying it would be refused by them.
	Warnings []Warning `json:"warnings"`
}

// Warning is something a configuration needs that some instances of the
// group cannot give (a plugin absent from their host, a format level
// newer than their gateway's): Field is the configuration's field path,
// Instances the instances concerned.
type Warning struct {
	Field     string   `json:"field"`
	Message   string   `json:"message"`
	Instances []string `json:"instances"`
}

// DeployRequest is the body of POST /groups/{group}/deployments.
// DraftVersion, when set, must be the draft's version (409 otherwise), so
// that what was reviewed is what is deployed.
//
// A draft identical to the current deployment (the configuration as
// written and its resolved values both) is not deployed: the answer is 409
// with code nothing_to_deploy, unless Force.
type DeployRequest struct {
	Message      string `json:"message"`
	DraftVersion uint64 `json:"draft_version,omitempty"`
	// Strict refuses (422, with the warnings) a draft that instances of
	// the group cannot run, instead of deploying it with warnings.
	Strict bool `json:"strict,omitempty"`
	Force  bool `json:"force,omitempty"`
	// AllowPartial deploys a configuration that some instances' gateways
	// are of too low a feature level to run to the others only (422
	// unrunnable without it); the instances left out are the answer's
	// Skipped.
	AllowPartial bool `json:"allow_partial,omitempty"`
}

// SkippedInstance is an instance a partial deployment was not deployed
// to, and why.
type SkippedInstance struct {
	Instance string `json:"instance"`
	Host     string `json:"host"`
	Reason   string `json:"reason"`
}

// RollbackRequest is the body of POST /groups/{group}/deployments/{n}/rollback.
// The group's draft is set to the configuration rolled back to, unless
// KeepDraft.
type RollbackRequest struct {
	Message   string `json:"message"`
	KeepDraft bool   `json:"keep_draft,omitempty"`
	// AllowPartial, as a deploy's: a configuration some instances'
	// gateways are of too low a feature level for is rolled back to on the
	// others only, rather than refused.
	AllowPartial bool `json:"allow_partial,omitempty"`
}

// Draft outcomes of a rollback (Deployment.Draft).
const (
	DraftReset = "reset"
	DraftKept  = "kept"
)

// The states of a roll-out, and of each instance in it.
const (
	// RolloutInProgress: some instance may still apply the deployment.
	RolloutInProgress = "in_progress"
	// RolloutComplete: every instance of the group applied it.
	RolloutComplete = "complete"
	// RolloutFailed: every instance has settled, and at least one refused
	// the deployment or stopped reporting.
	RolloutFailed = "failed"
	// RolloutSuperseded: a newer deployment of the group was made; this
	// one will not roll out any further.
	RolloutSuperseded = "superseded"

	// InstanceApplied runs the deployment (number and checksum) and is
	// ready.
	InstanceApplied = "applied"
	// InstanceRefused reports an error naming the deployment and runs
	// another one.
	InstanceRefused = "refused"
	// InstanceApplying reports fresh heartbeats but has not applied the
	// deployment yet.
	InstanceApplying = "applying"
	// InstancePending was never heard from.
	InstancePending = "pending"
	// InstanceUnreachable is Lost Connection or Offline: its node manager
	// has not reported it for longer than the lost threshold.
	InstanceUnreachable = "unreachable"
	// InstanceSkipped was left out of a partial deployment
	// (allow_partial): its gateway cannot run it, and keeps running the
	// deployment it had.
	InstanceSkipped = "skipped"
)

// Rollout is the body of GET /groups/{group}/deployments/{number}/rollout:
// where a deployment is in its roll-out to the group's instances.
type Rollout struct {
	Group      string `json:"group"`
	Deployment uint64 `json:"deployment"`
	Checksum   string `json:"checksum"`
	// CurrentDeployment is the group's newest deployment.
	CurrentDeployment uint64 `json:"current_deployment"`
	// State is in_progress, complete (every instance applied it), failed
	// (every instance settled, one or more refused it or stopped
	// reporting) or superseded (a newer deployment was made).
	State string `json:"state"`
	// Done: the state will not change by itself (any but in_progress).
	Done    bool `json:"done"`
	Applied int  `json:"applied"`
	// Skipped counts the instances a partial deployment was not deployed
	// to; a roll-out is complete when every other instance applied it.
	Skipped   int               `json:"skipped,omitempty"`
	Total     int               `json:"total"`
	Instances []RolloutInstance `json:"instances"`
	// Index is the blocking query's index: pass it back as ?index= to be
	// answered when anything above changes.
	Index uint64 `json:"index"`
}

// RolloutInstance is one instance in a roll-out.
type RolloutInstance struct {
	Name string `json:"name"`
	Host string `json:"host"`
	// State is applied, refused, applying, pending (never reported),
	// unreachable (Lost Connection or Offline) or skipped (left out of a
	// partial deployment, Reason saying why).
	State string `json:"state"`
	// Status is the instance's status against this deployment.
	Status            string `json:"status"`
	AppliedDeployment uint64 `json:"applied_deployment"`
	// Reason says why an instance has not applied the deployment: the
	// error it reported (the gateway's refusal), or its silence.
	Reason string `json:"reason,omitempty"`
}

// Deployment is a frozen, signed configuration of a group. Config (with
// secrets redacted) is set only by GET of one deployment.
type Deployment struct {
	Group      string    `json:"group"`
	Number     uint64    `json:"number"`
	Checksum   string    `json:"checksum"`
	Author     string    `json:"author"`
	Message    string    `json:"message,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	RollbackOf uint64    `json:"rollback_of,omitempty"`
	Signature  string    `json:"signature"`
	// Config is the configuration gateways run, Template the one as
	// written, with its placeholders (absent when it had none); both
	// with secrets redacted.
	Config   *deploy.Config    `json:"config,omitempty"`
	Template *deploy.Config    `json:"template,omitempty"`
	Source   *DeploymentSource `json:"source,omitempty"`
	// Warnings, in the answer to a deploy, list what instances of the
	// group lack to run it (see Validation).
	Warnings []Warning `json:"warnings,omitempty"`
	// Skipped are the instances a partial deployment (allow_partial) was
	// not deployed to, because their gateways cannot run it.
	Skipped []SkippedInstance `json:"skipped,omitempty"`
	// Draft is set by a rollback: "reset" when the group's draft was set
	// to the configuration rolled back to, "kept" when it was left as it
	// was (keep_draft).
	Draft string `json:"draft,omitempty"`
}

// DeploymentSource is the deployment an imported package came from.
type DeploymentSource struct {
	Domain     string `json:"domain"`
	Group      string `json:"group"`
	Deployment uint64 `json:"deployment"`
	Checksum   string `json:"checksum"`
}

// Import is the answer of POST /groups/{group}/import: what deploying the
// package changes and, unless it was a dry run, the deployment made.
type Import struct {
	DryRun     bool             `json:"dry_run"`
	Source     DeploymentSource `json:"source"`
	Checksum   string           `json:"checksum"`
	Diff       Diff             `json:"diff"`
	Deployment *Deployment      `json:"deployment,omitempty"`
	// Warnings list what instances of the group lack to run the package
	// (see Validation).
	Warnings []Warning `json:"warnings,omitempty"`
}

// Diff is what changed from one configuration to another, resource by
// resource. From and To name the deployments ("draft" for the draft).
type Diff struct {
	Group   string          `json:"group"`
	From    string          `json:"from"`
	To      string          `json:"to"`
	Changes []deploy.Change `json:"changes"`
}

// User is an administrator; passwords are write-only.
type User struct {
	Name      string    `json:"name"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// UserCreate is the body of POST /users.
type UserCreate struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// UserUpdate is the body of PATCH /users/{user}; absent fields are kept.
// Disabling a user revokes its tokens.
type UserUpdate struct {
	Password *string `json:"password,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
}

// Role is a named set of permissions. Built-in roles cannot be changed or
// deleted.
type Role struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	BuiltIn     bool     `json:"built_in"`
	Description string   `json:"description,omitempty"`
}

// Scope is where a binding applies: the whole domain, named groups, or the
// groups whose labels match Selector. Exactly one is set.
type Scope struct {
	Domain   bool              `json:"domain,omitempty"`
	Groups   []string          `json:"groups,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
}

// RoleBinding grants a role to a user within a scope.
type RoleBinding struct {
	ID        string    `json:"id,omitempty"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Scope     Scope     `json:"scope"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Audit results.
const (
	AuditOK     = "ok"
	AuditDenied = "denied"
	AuditError  = "error"
)

// AuditEntry records one administrative action: who, what, on which
// target, with what result, when, from where.
type AuditEntry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	User      string    `json:"user"`
	Action    string    `json:"action"`
	Target    string    `json:"target,omitempty"`
	Group     string    `json:"group,omitempty"`
	Result    string    `json:"result"`
	Status    int       `json:"status,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	Source    string    `json:"source,omitempty"`
}

// JoinTokenCreate is the body of POST /join-tokens: a token for one node
// manager to join the domain as Host (created when missing). TTL is a Go
// duration, 1 h by default, at most 7 days.
type JoinTokenCreate struct {
	Host string `json:"host"`
	TTL  string `json:"ttl,omitempty"`
}

// JoinToken describes a join token; its secret is shown once.
type JoinToken struct {
	ID        string     `json:"id"`
	Host      string     `json:"host"`
	CreatedBy string     `json:"created_by,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
}

// JoinTokenCreated is the answer to POST /join-tokens: the token, once,
// with the CA fingerprint the node manager pins.
type JoinTokenCreated struct {
	JoinToken
	Token         string `json:"token"`
	CAFingerprint string `json:"ca_fingerprint"`
}

// AgentPrefix is the path of the agent API, which node managers call with
// their client certificate (docs/node-manager.md).
const AgentPrefix = "/agent/v1"

// AgentJoinRequest is the body of POST /agent/v1/join.
type AgentJoinRequest struct {
	Token string `json:"token"`
	// CSR is a PEM certificate request made with the node's own key.
	CSR string `json:"csr"`
}

// AgentJoinResponse carries what a node manager keeps after joining.
type AgentJoinResponse struct {
	Domain      string `json:"domain"`
	Host        string `json:"host"`
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
	// SigningKey is the domain's deployment key ("ed25519:…"), which
	// gateways verify deployments with.
	SigningKey string `json:"signing_key"`
}

// AgentRenewRequest is the body of POST /agent/v1/renew.
type AgentRenewRequest struct {
	CSR string `json:"csr"`
}

// AgentRenewResponse carries the renewed certificate.
type AgentRenewResponse struct {
	Certificate string `json:"certificate"`
	// CA is the domain's trust bundle, every root it trusts; absent from
	// admin nodes older than CA rotation.
	CA string `json:"ca,omitempty"`
}

// AgentCA is the answer of GET /agent/v1/ca: the roots a node manager
// is to trust and the one its certificate should come from.
type AgentCA struct {
	// Bundle is every root the domain trusts, newest first (PEM).
	Bundle string `json:"bundle"`
	// TrustID names the bundle, as heartbeat answers do.
	TrustID string `json:"trust_id"`
	// Issuer is the fingerprint of the root that signs node certificates;
	// a node whose certificate comes from another renews it.
	Issuer string `json:"issuer"`
}

// AgentInstanceState is one local instance as its node manager sees it.
type AgentInstanceState struct {
	Name              string `json:"name"`
	Process           string `json:"process,omitempty"`
	PID               int    `json:"pid,omitempty"`
	Restarts          int    `json:"restarts,omitempty"`
	AppliedDeployment uint64 `json:"applied_deployment,omitempty"`
	AppliedChecksum   string `json:"applied_checksum,omitempty"`
	Ready             bool   `json:"ready"`
	LastError         string `json:"last_error,omitempty"`
	// Peers is the gateway's gossip view of its group.
	Peers []GossipPeer `json:"peers,omitempty"`
	// GatewayVersion and FeatureLevel are those of the gateway process
	// that runs, as it reports them (the host's binary may be another);
	// absent until it has reported, and from older node managers.
	GatewayVersion string `json:"gateway_version,omitempty"`
	FeatureLevel   int    `json:"feature_level,omitempty"`
	// Settings are the dynamic settings the gateway runs, as it reports
	// them; nil when it runs as started.
	Settings *AgentGatewaySettings `json:"settings,omitempty"`
	// Release is the gateway release the process runs ("" the node
	// manager's own binary).
	Release string `json:"release,omitempty"`
	// RestartGeneration is the instance's restart generation
	// (AgentInstance.RestartGeneration) the process was started under:
	// a restart asked of the admin node is done once it reaches it.
	RestartGeneration uint64 `json:"restart_generation,omitempty"`
	// Pending says the process runs, but not as the node manager was last
	// told: its replacement is under way, or failed (LastError says why)
	// and the old process serves on.
	Pending bool `json:"pending,omitempty"`
	// Traffic is what the process counted since it started, read from its
	// status port for the heartbeat; nil when it could not be read.
	Traffic *InstanceTraffic `json:"traffic,omitempty"`
}

// InstanceTraffic is a gateway process's request totals: the rolling
// upgrades compare the error rate of new processes with the old ones'.
type InstanceTraffic struct {
	// Boot identifies the process.
	Boot     string `json:"boot"`
	Requests uint64 `json:"requests"`
	// Errors counts the answers of class 5xx.
	Errors uint64 `json:"errors"`
}

// AgentHeartbeat is the body of PUT /agent/v1/heartbeat: every instance of
// the host.
type AgentHeartbeat struct {
	// Address is the IP address the host's gateways are reached at by
	// their peers (node run --advertise); empty, the admin node takes the
	// address the heartbeat comes from.
	Address string `json:"address,omitempty"`
	// Version is the node manager's version (gatehouse --version).
	Version   string               `json:"version,omitempty"`
	Instances []AgentInstanceState `json:"instances"`
	// Capabilities is what the host's gateways can run; absent from node
	// managers older than this field.
	Capabilities *HostCapabilities `json:"capabilities,omitempty"`
}

// AgentHeartbeatAnswer acknowledges a heartbeat.
type AgentHeartbeatAnswer struct {
	ServerTime time.Time `json:"server_time"`
	// CATrust is the TrustID of the domain's trust bundle: a node manager
	// holding another fetches GET /agent/v1/ca. CAIssuer is the
	// fingerprint of the root signing node certificates.
	CATrust  string `json:"ca_trust,omitempty"`
	CAIssuer string `json:"ca_issuer,omitempty"`
}

// AgentInstance is the desired state of one instance of the host.
type AgentInstance struct {
	Name         string `json:"name"`
	Group        string `json:"group"`
	Listen       string `json:"listen,omitempty"`
	TLSListen    string `json:"tls_listen,omitempty"`
	StatusListen string `json:"status_listen,omitempty"`
	// Gossip is how the instance joins its group's gossip.
	Gossip *AgentGossip `json:"gossip,omitempty"`
	// RestartGeneration goes up with every restart asked of the admin
	// node; the node manager restarts the gateway when it changes.
	RestartGeneration uint64 `json:"restart_generation,omitempty"`
	// Settings are the gateway's dynamic settings, the group's and the
	// instance's merged; the node manager delivers them to the running
	// gateway without restarting it. Nil: none set.
	Settings *AgentGatewaySettings `json:"settings,omitempty"`
	// Release is the gateway release the instance runs; nil: the node
	// manager's own binary.
	Release *AgentRelease `json:"release,omitempty"`
}

// AgentGossip is an instance's gossip settings: where it listens, the
// addresses of its group's other instances, and the group's keys (base64,
// the primary first). Secret: only the agent API carries it.
type AgentGossip struct {
	Listen string   `json:"listen"`
	Seeds  []string `json:"seeds"`
	Keys   []string `json:"keys"`
}

// AgentInstances answers the blocking query of the host's instances.
type AgentInstances struct {
	Index     uint64          `json:"index"`
	Instances []AgentInstance `json:"instances"`
	// PublishKeys open the deployments published to object storage
	// (node run --fallback-config), the one sealing first. Secret: only
	// the agent API carries them.
	PublishKeys [][]byte `json:"publish_keys,omitempty"`
}

// AgentDeployment answers the blocking query of a group's current
// deployment; Deployment is nil while the group has none.
type AgentDeployment struct {
	Index      uint64             `json:"index"`
	Deployment *deploy.Deployment `json:"deployment,omitempty"`
}
