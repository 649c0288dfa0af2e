package store

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/boltfile"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// Errors the store wraps; test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConflict is an optimistic-concurrency failure: the caller's
	// expected version is not the stored one (HTTP 409/412).
	ErrConflict = errors.New("version conflict")
	// ErrInUse refuses a delete that would leave references dangling.
	ErrInUse   = errors.New("in use")
	ErrInvalid = errors.New("invalid")
	// ErrNewerSchema is returned for a file written by a newer gatehouse:
	// it is left untouched rather than guessed at.
	ErrNewerSchema = boltfile.ErrNewerSchema
)

// Domain is the one domain a store belongs to.
type Domain struct {
	Name             string    `json:"name"`
	CreatedAt        time.Time `json:"created_at"`
	SigningPublicKey []byte    `json:"signing_public_key"`
	CACertPEM        string    `json:"ca_cert_pem"`
	// PublishKeys seal the deployments published to object storage
	// (package pubseal), sealed themselves with the settings key; the
	// first seals, the others still open (rotation). Secret.
	PublishKeys [][]byte `json:"publish_keys,omitempty"`
	// CAs are the domain's CA roots once one was rotated (docs/pki.md),
	// newest first, each key sealed with the settings key so that every
	// admin node of the store sees them; empty while the domain has only
	// the root of admin init (CACertPEM), whose key is in the data dir.
	CAs []DomainCA `json:"cas,omitempty"`
}

// DomainCA is one root of the domain's CA.
type DomainCA struct {
	CertPEM string `json:"cert_pem"`
	// KeySealed is the root's PKCS#8 key sealed with the settings key.
	// Secret.
	KeySealed []byte    `json:"key_sealed"`
	AddedAt   time.Time `json:"added_at"`
}

// GroupTypeGateway is the only group type so far.
const GroupTypeGateway = "gateway"

// Group is a set of instances serving the same configuration.
type Group struct {
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Labels      map[string]string `json:"labels,omitempty"`
	Description string            `json:"description,omitempty"`
	// Environment names the domain's environment whose values and secrets
	// resolve the placeholders of the group's deployments; "" for none.
	Environment string    `json:"environment,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Version is bumped by every update, so that it can serve as an ETag.
	Version uint64 `json:"version"`
	// GossipKeys encrypt the gossip of the group's gateways; the first is
	// the primary, the others are still accepted (rotation). Secret.
	GossipKeys [][]byte `json:"gossip_keys,omitempty"`
	// Settings are the dynamic settings of the group's gateways; nil when
	// none is set. UpdateGroup keeps them.
	Settings *GatewaySettings `json:"settings,omitempty"`
	// Gateway is the gateway release the group runs, and its rollout
	// (UpdateGroupGateway; UpdateGroup keeps it).
	Gateway GroupGateway `json:"gateway,omitzero"`
}

// GatewaySettings are dynamic settings of gateways, of a group or of one
// instance (whose fields, when set, win over the group's): changed at run
// time, without a restart or a redeploy. A nil or empty field is not set
// at this level.
type GatewaySettings struct {
	// LogLevel is trace, debug, info, warn or error.
	LogLevel string `json:"log_level,omitempty"`
	// AccessLog turns the access log on (with the percentage of exchanges
	// logged) or off.
	AccessLog *AccessLogSetting `json:"access_log,omitempty"`
	// Trace logs the requests of one route in detail until a time.
	Trace *TraceSetting `json:"trace,omitempty"`
}

// AccessLogSetting turns a gateway's access log on or off.
type AccessLogSetting struct {
	Enabled       bool `json:"enabled"`
	SamplePercent int  `json:"sample_percent,omitempty"`
}

// TraceSetting traces the requests of Route until Until.
type TraceSetting struct {
	Route string    `json:"route"`
	Until time.Time `json:"until"`
}

// Host is a machine running a node manager.
type Host struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// Address is the IP address the host's gateways are reached at by
	// their peers, as its node manager last advertised it.
	Address string `json:"address,omitempty"`
	// Capabilities is what its node manager last reported the host's
	// gateways can run; nil until one reported.
	Capabilities *HostCapabilities `json:"capabilities,omitempty"`
}

// HostCapabilities is what the gateways of a host can run: the gateway
// binary's version, the configuration format level it understands
// (deploy.FeatureLevel) and the external policy plugins in the node
// manager's plugin directory. Since is when the host began to report
// them as they are: they are written when they change.
type HostCapabilities struct {
	GatewayVersion string    `json:"gateway_version,omitempty"`
	FeatureLevel   int       `json:"feature_level,omitempty"`
	PluginDir      string    `json:"plugin_dir,omitempty"`
	Plugins        []string  `json:"plugins,omitempty"`
	Since          time.Time `json:"since"`
}

// Instance is one gateway process of a group on a host. Its name is unique
// in the domain.
type Instance struct {
	Name         string `json:"name"`
	Group        string `json:"group"`
	Host         string `json:"host"`
	Listen       string `json:"listen,omitempty"`
	TLSListen    string `json:"tls_listen,omitempty"`
	StatusListen string `json:"status_listen,omitempty"`
	// GossipListen is the gateway's gossip address, ":7946"-style.
	GossipListen string `json:"gossip_listen,omitempty"`
	// RestartGeneration counts the restarts asked of the admin node
	// (RequestRestart). The node manager restarts the gateway when it sees
	// a higher one than its process was started with; kept here rather
	// than in memory, it survives reconnects and is shared by every admin
	// node of the store. UpdateInstance keeps it.
	RestartGeneration uint64 `json:"restart_generation,omitempty"`
	// Settings are the instance's own dynamic settings (SetInstanceSettings);
	// nil when none is set. UpdateInstance keeps them.
	Settings  *GatewaySettings `json:"settings,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

// InstanceState is what the admin node last heard about an instance from
// its node manager's heartbeats: the observed state, beside the desired
// state of Instance.
type InstanceState struct {
	Instance          string    `json:"instance"`
	LastHeartbeat     time.Time `json:"last_heartbeat"`
	AppliedDeployment uint64    `json:"applied_deployment,omitempty"`
	AppliedChecksum   string    `json:"applied_checksum,omitempty"`
	Ready             bool      `json:"ready"`
	// Process is the supervisor's view: running, starting, crash-loop,
	// stopped.
	Process   string `json:"process,omitempty"`
	PID       int    `json:"pid,omitempty"`
	Restarts  int    `json:"restarts,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Peers is the instance's gossip view of its group.
	Peers []Peer `json:"peers,omitempty"`
	// GatewayVersion and FeatureLevel are the running gateway's.
	GatewayVersion string `json:"gateway_version,omitempty"`
	FeatureLevel   int    `json:"feature_level,omitempty"`
	// Settings are the dynamic settings the gateway reports it runs.
	Settings *RunningSettings `json:"settings,omitempty"`
	// Release is the gateway release the process runs ("" the node
	// manager's own binary).
	Release string `json:"release,omitempty"`
	// RestartGeneration is the restart generation the process was
	// started under; Pending, that its node manager has still to replace
	// it (or failed to) as last told.
	RestartGeneration uint64 `json:"restart_generation,omitempty"`
	Pending           bool   `json:"pending,omitempty"`
	// Boot, Requests and Errors (5xx) are the process's totals as of the
	// heartbeat; Boot is empty when they could not be read.
	Boot     string `json:"boot,omitempty"`
	Requests uint64 `json:"requests,omitempty"`
	Errors   uint64 `json:"errors,omitempty"`
}

// RunningSettings are the dynamic settings one gateway runs.
type RunningSettings struct {
	LogLevel         string    `json:"log_level,omitempty"`
	AccessLogPercent int       `json:"access_log_percent,omitempty"`
	TraceRoute       string    `json:"trace_route,omitempty"`
	TraceUntil       time.Time `json:"trace_until,omitzero"`
}

// Peer is one member of a group as another member's gossip sees it.
type Peer struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Deployment uint64    `json:"deployment,omitempty"`
	Checksum   string    `json:"checksum,omitempty"`
	Since      time.Time `json:"since,omitzero"`
}

// JoinToken lets one node manager join the domain as Host, once, before
// ExpiresAt. SecretHash is opaque to the store.
type JoinToken struct {
	ID         string    `json:"id"`
	Host       string    `json:"host"`
	SecretHash string    `json:"secret_hash"`
	CreatedBy  string    `json:"created_by,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// UsedAt is zero until the token is used.
	UsedAt time.Time `json:"used_at"`
}

// NodeCert records a certificate issued to a host's node manager, so that
// it can be revoked. Serial is the certificate's serial number in
// lowercase hex.
type NodeCert struct {
	Serial   string    `json:"serial"`
	Host     string    `json:"host"`
	IssuedAt time.Time `json:"issued_at"`
	NotAfter time.Time `json:"not_after"`
	Revoked  bool      `json:"revoked,omitempty"`
}

// InstanceFilter selects instances; an empty field matches all.
type InstanceFilter struct {
	Group string
	Host  string
}

// Draft is the configuration being edited for a group. Version 0 means no
// draft has been written yet.
type Draft struct {
	Group  string        `json:"group"`
	Config deploy.Config `json:"config"`
	// Version is bumped by every write, so that it can serve as an ETag.
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Deployment is a frozen, signed configuration of a group. Deployments are
// never changed once stored.
type Deployment struct {
	Group string `json:"group"`
	// Number counts a group's deployments from 1; the store assigns it.
	Number   uint64 `json:"number"`
	Checksum string `json:"checksum"`
	// Config is the canonical JSON encoding that Checksum and Signature
	// cover.
	Config    []byte    `json:"config"`
	Signature []byte    `json:"signature"`
	Author    string    `json:"author"`
	Message   string    `json:"message,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// RollbackOf is the number of the earlier deployment this one
	// redeploys, or 0.
	RollbackOf uint64 `json:"rollback_of,omitempty"`
	// Template is the canonical encoding of the configuration as written,
	// placeholders unresolved, when it differs from Config (which holds
	// their values, secrets included): what an export packages. Empty
	// when the configuration had no placeholders.
	Template []byte `json:"template,omitempty"`
	// Source is the package this deployment was imported from, or nil.
	Source *DeploymentSource `json:"source,omitempty"`
	// Skipped are the instances of the group this deployment was not
	// deployed to (allow_partial): their gateways cannot run it.
	Skipped []SkippedInstance `json:"skipped,omitempty"`
}

// SkippedInstance is an instance a partial deployment was not deployed
// to, and why.
type SkippedInstance struct {
	Instance string `json:"instance"`
	Host     string `json:"host"`
	Reason   string `json:"reason"`
}

// DeploymentSource names the deployment of another (or the same) domain
// that an imported package was exported from.
type DeploymentSource struct {
	Domain     string `json:"domain"`
	Group      string `json:"group"`
	Deployment uint64 `json:"deployment"`
	Checksum   string `json:"checksum"`
}

// User is an administrator. PasswordHash is opaque to the store.
type User struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"password_hash,omitempty"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

// Role is a named set of permissions.
type Role struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	// BuiltIn marks roles the admin node creates itself; the store does not
	// protect them, the API does.
	BuiltIn     bool   `json:"built_in,omitempty"`
	Description string `json:"description,omitempty"`
}

// Scope is where a role binding applies: the whole domain, named groups, or
// the groups whose labels match Selector. Exactly one is set.
type Scope struct {
	Domain   bool              `json:"domain,omitempty"`
	Groups   []string          `json:"groups,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
}

// RoleBinding grants a role to a user within a scope.
type RoleBinding struct {
	// ID is assigned by the store when empty.
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Scope     Scope     `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
}

// TokenKindLogin is the Kind of tokens made by password logins.
const TokenKindLogin = "login"

// Token is an API token of a user. SecretHash is opaque to the store.
type Token struct {
	// ID is assigned by the store when empty.
	ID   string `json:"id"`
	User string `json:"user"`
	Name string `json:"name,omitempty"`
	// Kind is TokenKindLogin or empty for an API token.
	Kind       string    `json:"kind,omitempty"`
	SecretHash string    `json:"secret_hash"`
	CreatedAt  time.Time `json:"created_at"`
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	Revoked    bool      `json:"revoked,omitempty"`
}

// Audit results.
const (
	AuditOK     = "ok"
	AuditDenied = "denied"
	AuditError  = "error"
)

// AuditEntry records one administrative action.
type AuditEntry struct {
	// Seq is assigned by the store and increases with every entry.
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	User   string    `json:"user"`
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"`
	Group  string    `json:"group,omitempty"`
	Result string    `json:"result"`
	// Status is the HTTP status of the call, when it was one.
	Status    int    `json:"status,omitempty"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Source    string `json:"source,omitempty"`
}

// AuditFilter selects audit entries; zero fields match all. Since is
// inclusive, Until exclusive. Before is a cursor: only entries with a
// smaller Seq, so that the next page starts at the last Seq returned.
// Limit <= 0 means no limit.
type AuditFilter struct {
	User   string
	Action string
	Group  string
	Since  time.Time
	Until  time.Time
	Limit  int
	Before uint64
}

// Store is the admin node's persistent state. Every method is one
// transaction. Lists are sorted by name (IDs for bindings and tokens)
// unless they say otherwise. Times are stored in UTC; zero CreatedAt (and
// audit Time) are set to now.
type Store interface {
	// InitDomain fails with ErrExists when the store already has a domain.
	InitDomain(ctx context.Context, d Domain) error
	GetDomain(ctx context.Context) (Domain, error)
	// UpdatePublishKeys replaces the domain's publish keys with what
	// change makes of them, in one transaction, and returns them: two
	// admin nodes making the first key at once keep one.
	UpdatePublishKeys(ctx context.Context, change func(keys [][]byte) ([][]byte, error)) ([][]byte, error)
	// UpdateCAs replaces the domain's CA roots (Domain.CAs) with what
	// change makes of the current ones, atomically, and returns them.
	UpdateCAs(ctx context.Context, change func(cas []DomainCA) ([]DomainCA, error)) ([]DomainCA, error)

	// CreateGroup stores g with Version 1; an empty Type is "gateway".
	CreateGroup(ctx context.Context, g Group) (Group, error)
	GetGroup(ctx context.Context, name string) (Group, error)
	ListGroups(ctx context.Context) ([]Group, error)
	// UpdateGroup replaces the labels, description and type of g.Name when
	// its Version is expectedVersion (ErrConflict otherwise), bumping
	// Version.
	UpdateGroup(ctx context.Context, g Group, expectedVersion uint64) (Group, error)
	// SetGossipKeys replaces the group's gossip keys, leaving its Version:
	// the keys are not part of what an ETag protects.
	SetGossipKeys(ctx context.Context, group string, keys [][]byte) (Group, error)
	// SetGroupSettings replaces the group's dynamic settings (nil: none),
	// leaving its Version: they are not part of what an ETag protects.
	SetGroupSettings(ctx context.Context, group string, s *GatewaySettings) (Group, error)
	// DeleteGroup refuses with ErrInUse while instances belong to the
	// group; its draft and deployment history go with it.
	DeleteGroup(ctx context.Context, name string) error
	// UpdateGroupGateway replaces the group's Gateway with what change
	// makes of it, in one transaction, leaving its Version; a Version
	// naming no release is refused with ErrNotFound.
	UpdateGroupGateway(ctx context.Context, group string, change func(gw *GroupGateway) error) (Group, error)

	// PutRelease stores a release and its binary; ErrExists when the
	// version is taken.
	PutRelease(ctx context.Context, r Release, binary []byte) (Release, error)
	GetRelease(ctx context.Context, version string) (Release, error)
	GetReleaseBinary(ctx context.Context, version string) ([]byte, error)
	// ListReleases returns the releases (without binaries) by version.
	ListReleases(ctx context.Context) ([]Release, error)
	// DeleteRelease refuses with ErrInUse while a group runs the release
	// or a rollout moves from or to it.
	DeleteRelease(ctx context.Context, version string) error

	// PutAdminCert records an admin node's HTTPS certificate, replacing
	// what that node recorded before.
	PutAdminCert(ctx context.Context, c AdminCert) error
	// ListAdminCerts returns the certificates the admin nodes recorded, by
	// node.
	ListAdminCerts(ctx context.Context) ([]AdminCert, error)

	CreateHost(ctx context.Context, h Host) (Host, error)
	GetHost(ctx context.Context, name string) (Host, error)
	ListHosts(ctx context.Context) ([]Host, error)
	// SetHostAddress records the address a host's node manager
	// advertises.
	SetHostAddress(ctx context.Context, name, address string) error
	// SetHostCapabilities records what a host's node manager reports its
	// gateways can run.
	SetHostCapabilities(ctx context.Context, name string, c HostCapabilities) error
	// DeleteHost refuses with ErrInUse while instances are on the host,
	// and revokes the host's node certificates.
	DeleteHost(ctx context.Context, name string) error

	// CreateJoinToken requires the host to exist.
	CreateJoinToken(ctx context.Context, t JoinToken) (JoinToken, error)
	ListJoinTokens(ctx context.Context) ([]JoinToken, error)
	// UseJoinToken marks the token used at now, after check (which sees
	// the stored token and may refuse it, e.g. expired or wrong secret),
	// in one transaction: a token is used at most once even by concurrent
	// joins (ErrConflict for the later ones).
	UseJoinToken(ctx context.Context, id string, now time.Time, check func(JoinToken) error) (JoinToken, error)

	// AddNodeCert requires the host to exist.
	AddNodeCert(ctx context.Context, c NodeCert) error
	GetNodeCert(ctx context.Context, serial string) (NodeCert, error)

	// CreateInstance fails with ErrNotFound naming the group or host when
	// either is missing.
	CreateInstance(ctx context.Context, in Instance) (Instance, error)
	GetInstance(ctx context.Context, name string) (Instance, error)
	ListInstances(ctx context.Context, f InstanceFilter) ([]Instance, error)
	// RequestRestart bumps the instance's RestartGeneration and returns
	// the instance as stored.
	RequestRestart(ctx context.Context, name string) (Instance, error)
	// SetInstanceSettings replaces the instance's own dynamic settings
	// (nil: none) and returns the instance as stored.
	SetInstanceSettings(ctx context.Context, name string, s *GatewaySettings) (Instance, error)
	// UpdateInstance replaces everything but CreatedAt, with the same
	// checks as CreateInstance.
	UpdateInstance(ctx context.Context, in Instance) (Instance, error)
	// DeleteInstance also forgets the instance's observed state.
	DeleteInstance(ctx context.Context, name string) error
	// PutInstanceState replaces the observed state of an existing instance.
	PutInstanceState(ctx context.Context, st InstanceState) error
	// PutInstanceStates replaces the observed states of the instances
	// that still exist, in one transaction, and skips the others.
	PutInstanceStates(ctx context.Context, sts []InstanceState) error
	// ListInstanceStates returns the observed state of every instance
	// heard from, sorted by instance name.
	ListInstanceStates(ctx context.Context) ([]InstanceState, error)

	// GetDraft returns Draft{Group: group} (Version 0) for a group that has
	// none yet, and ErrNotFound for a missing group.
	GetDraft(ctx context.Context, group string) (Draft, error)
	// PutDraft writes cfg when the draft's Version is expectedVersion
	// (ErrConflict otherwise: concurrent editors never lose an update),
	// bumping Version.
	PutDraft(ctx context.Context, group string, cfg deploy.Config, expectedVersion uint64, by string) (Draft, error)

	GetDeployment(ctx context.Context, group string, number uint64) (Deployment, error)
	// ListDeployments returns the group's deployments, newest first.
	ListDeployments(ctx context.Context, group string) ([]Deployment, error)
	// LatestDeployment fails with ErrNotFound when the group has none.
	LatestDeployment(ctx context.Context, group string) (Deployment, error)
	// Freeze reads the group's draft, fails with ErrConflict unless its
	// Version is expectedDraftVersion, and stores what build returns
	// (validated, encoded, signed) as the deployment numbered number, the
	// group's next (NextDeploymentNumber: above the stored ones and those
	// its instances report running), in one transaction. build runs while the store is
	// locked for writing: it must be quick and must not call the store, or
	// it deadlocks. An error from build is returned wrapped, and nothing is
	// stored.
	Freeze(ctx context.Context, group string, expectedDraftVersion uint64, build func(d Draft, number uint64) (Deployment, error)) (Deployment, error)
	// Rollback stores what build makes of deployment to (src) as the
	// group's next deployment, with RollbackOf set, in one transaction,
	// under the same rules as Freeze. The draft is left alone.
	Rollback(ctx context.Context, group string, to uint64, build func(src Deployment, number uint64) (Deployment, error)) (Deployment, error)

	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser replaces the password hash and Disabled flag of u.Name.
	UpdateUser(ctx context.Context, u User) (User, error)
	// DeleteUser also deletes the user's role bindings and revokes its
	// tokens (kept, revoked, so that audit references stay resolvable).
	DeleteUser(ctx context.Context, name string) error

	CreateRole(ctx context.Context, r Role) (Role, error)
	GetRole(ctx context.Context, name string) (Role, error)
	ListRoles(ctx context.Context) ([]Role, error)
	UpdateRole(ctx context.Context, r Role) (Role, error)
	// DeleteRole refuses with ErrInUse while bindings grant the role.
	DeleteRole(ctx context.Context, name string) error

	// CreateRoleBinding requires the user and the role to exist and
	// exactly one kind of scope (ErrInvalid otherwise).
	CreateRoleBinding(ctx context.Context, rb RoleBinding) (RoleBinding, error)
	GetRoleBinding(ctx context.Context, id string) (RoleBinding, error)
	// ListRoleBindings returns the bindings of user, or all for "".
	ListRoleBindings(ctx context.Context, user string) ([]RoleBinding, error)
	DeleteRoleBinding(ctx context.Context, id string) error

	// CreateToken requires the user to exist.
	CreateToken(ctx context.Context, t Token) (Token, error)
	GetToken(ctx context.Context, id string) (Token, error)
	// ListTokens returns the tokens of user, or all for "".
	ListTokens(ctx context.Context, user string) ([]Token, error)
	RevokeToken(ctx context.Context, id string) error
	TouchToken(ctx context.Context, id string, at time.Time) error

	// AppendAudit assigns e.Seq. The audit log is append-only: there is
	// no way to change or delete an entry.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// ListAudit returns the matching entries, newest (highest Seq) first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	ListEnvironments(ctx context.Context) ([]Environment, error)
	GetEnvironment(ctx context.Context, name string) (Environment, error)
	// UpdateEnvironment lets change edit the environment's values in one
	// transaction, creating the environment when it is missing (change
	// then sees Version 0); it bumps Version and stamps the update with
	// by. An error from change is returned as it is, and nothing is
	// written.
	UpdateEnvironment(ctx context.Context, name, by string, change func(e *Environment) error) (Environment, error)
	// DeleteEnvironment deletes the environment with its secrets.
	DeleteEnvironment(ctx context.Context, name string) error
	// PutSecret stores s, replacing the secret of the same name, and
	// creates its environment when missing (leaving the Version of an
	// existing one: the secrets are not part of what its ETag protects).
	PutSecret(ctx context.Context, s Secret) (Secret, error)
	// ListSecrets returns the secrets of env, or of every environment for
	// "", sorted by environment and name.
	ListSecrets(ctx context.Context, env string) ([]Secret, error)
	DeleteSecret(ctx context.Context, env, name string) error

	ListTrustedDomains(ctx context.Context) ([]TrustedDomain, error)
	GetTrustedDomain(ctx context.Context, name string) (TrustedDomain, error)
	// PutTrustedDomain creates or replaces the trusted domain d.Name.
	PutTrustedDomain(ctx context.Context, d TrustedDomain) (TrustedDomain, error)
	DeleteTrustedDomain(ctx context.Context, name string) error

	// IngestTraffic stores a node manager's batch once: a batch whose Seq
	// is not above the node's last stored one is acknowledged without
	// being stored (TrafficIngest.Stored false). Labels beyond lim fold
	// into OtherLabel; now stamps the node's last batch and the labels'
	// last use. ErrInvalid for a malformed batch.
	IngestTraffic(ctx context.Context, b traffic.Batch, lim TrafficLimits, now time.Time) (TrafficIngest, error)
	// ResetTrafficNode restarts a node's sequence, when a new node manager
	// joins for the host.
	ResetTrafficNode(ctx context.Context, node string) error
	ListTrafficNodes(ctx context.Context) ([]TrafficNode, error)
	// QueryTraffic sums a group's traffic by step; ErrInvalid for a query
	// that TrafficQuery's rules refuse, ErrNotFound for a missing group.
	QueryTraffic(ctx context.Context, q TrafficQuery) (TrafficResult, error)
	// TrafficTotals returns each group's running totals since its first
	// batch, by service and class.
	TrafficTotals(ctx context.Context) ([]TrafficGroup, error)
	// MaintainTraffic rolls 10 s points up into 1 min points and removes
	// what is past retention, as of now.
	MaintainTraffic(ctx context.Context, now time.Time) (TrafficMaintenance, error)

	// Snapshot calls emit with every record of the domain but its
	// traffic, in the order of SnapshotKinds, as of one moment: one read
	// transaction, so that writers go on meanwhile and none of their
	// changes is half seen. An error from emit stops it and is returned.
	Snapshot(ctx context.Context, emit func(Item) error) error
	// Restore fills a store that holds nothing with the items read passes
	// to put, in one transaction: an error from read or put, or a store
	// that is not empty (ErrExists), leaves the store as it was. Records
	// keep what they hold (versions, numbers, IDs, times, audit Seq).
	Restore(ctx context.Context, read func(put func(Item) error) error) error

	Close() error
}
