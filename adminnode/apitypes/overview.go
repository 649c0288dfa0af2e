package apitypes

import "time"

// Overview is the answer to GET /overview: the domain on one screen, as far
// as the caller may see it. Lists are never null.
type Overview struct {
	Domain string    `json:"domain"`
	Time   time.Time `json:"time"`
	// Groups are the groups the caller may read, by name.
	Groups []OverviewGroup `json:"groups"`
	// Hosts are listed to callers with host:read only; HostsHidden says
	// they were left out.
	Hosts       []OverviewHost `json:"hosts"`
	HostsHidden bool           `json:"hosts_hidden,omitempty"`
	// Attention lists what needs an operator, most severe kinds first.
	Attention []Attention `json:"attention"`
	// AdminNodes names the admin nodes serving the domain's store, and
	// LeaseHolder the one running its background work (instance
	// removal, traffic roll-up): "" while none holds it.
	AdminNodes  []string `json:"admin_nodes"`
	LeaseHolder string   `json:"lease_holder"`
	// Database is the domain's store as the answering admin node reached
	// it. An overview is only answered when the store answered, so
	// Reachable is true in every overview; an admin node that cannot
	// reach its database answers 503 with CodeUnavailable instead.
	Database OverviewDatabase `json:"database"`
	// Backups are the scheduled backups of the answering admin node
	// (admin run --backup-to), shown to callers with backup:create; nil
	// when it has none.
	Backups *OverviewBackups `json:"backups,omitempty"`
	// Certificates are the lifetimes of the certificates the domain
	// depends on that the caller may see (GET /certificates).
	Certificates []CertificateExpiry `json:"certificates"`
}

// OverviewBackups is how an admin node's scheduled backups went since it
// started.
type OverviewBackups struct {
	// Location is where they are stored, without credentials.
	Location string `json:"location"`
	Interval string `json:"interval"`
	Keep     int    `json:"keep"`
	// Running is true when this admin node holds the background lease and
	// so takes them; another admin node's are shown by that node.
	Running     bool      `json:"running"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastName    string    `json:"last_name,omitempty"`
	LastSize    int64     `json:"last_size,omitempty"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// LastError is the last backup's error; empty when it succeeded.
	LastError string `json:"last_error,omitempty"`
	Successes uint64 `json:"successes"`
	Failures  uint64 `json:"failures"`
	Kept      int    `json:"kept"`
}

// OverviewDatabase is the domain's store as one admin node sees it.
type OverviewDatabase struct {
	// Kind is "postgres" (shared by every admin node of the domain) or
	// "bbolt" (a file of this admin node's).
	Kind      string `json:"kind"`
	Reachable bool   `json:"reachable"`
}

// OverviewGroup is a group's roll-out, as in its summary.
type OverviewGroup struct {
	Name              string `json:"name"`
	CurrentDeployment uint64 `json:"current_deployment"`
	Instances         int    `json:"instances"`
	// ByStatus counts instances by status; every status is present.
	ByStatus map[string]int `json:"by_status"`
	UpToDate int            `json:"up_to_date"`
	Rollout  string         `json:"rollout"`
	Complete bool           `json:"complete"`
	// Versions is the group's mix of gateway versions (what the caller
	// may read of its instances).
	Versions []VersionCount `json:"versions,omitempty"`
	// Skipped are the instances the current deployment, a partial one,
	// was not deployed to.
	Skipped []SkippedInstance `json:"skipped,omitempty"`
	// Settings are the group's dynamic settings, and Running the
	// instances whose gateways report running other than as started.
	Settings *GatewaySettings  `json:"settings,omitempty"`
	Running  []RunningSettings `json:"running_settings,omitempty"`
}

// RunningSettings are the dynamic settings one instance's gateway reports
// it runs.
type RunningSettings struct {
	Instance string               `json:"instance"`
	Settings AgentGatewaySettings `json:"settings"`
}

// OverviewHost is a host and what its node manager last said.
type OverviewHost struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	// Instances counts the host's instances of every group.
	Instances int `json:"instances"`
	// LastContact is the node manager's last heartbeat; zero when none
	// came.
	LastContact time.Time `json:"last_contact,omitzero"`
	// Version is the node manager's, as its heartbeats report it; empty
	// until the first since the admin node started.
	Version string `json:"version,omitempty"`
	// CertNotAfter is when the client certificate of its last heartbeat
	// expires.
	CertNotAfter time.Time    `json:"cert_not_after,omitzero"`
	Traffic      *HostTraffic `json:"traffic,omitempty"`
	// GatewayBinary is the version of the host's gateway binary, as its
	// node manager reports it; Gateways the mix of versions its running
	// gateways report.
	GatewayBinary string         `json:"gateway_binary,omitempty"`
	Gateways      []VersionCount `json:"gateways,omitempty"`
}

// Kinds of Attention, most severe first.
const (
	AttentionOffline        = "offline"
	AttentionLostConnection = "lost_connection"
	AttentionCrashLoop      = "crash_loop"
	AttentionOnlyHeartbeat  = "only_heartbeat"
	AttentionUnreachable    = "unreachable"
	AttentionDrift          = "drift"
	AttentionCertExpiry     = "cert_expiry"
	AttentionSpoolDrops     = "spool_drops"
	AttentionBackupFailing  = "backup_failing"
	AttentionPending        = "pending"
)

// AttentionKinds returns the kinds in the order the overview lists them.
func AttentionKinds() []string {
	return []string{AttentionOffline, AttentionLostConnection, AttentionCrashLoop, AttentionOnlyHeartbeat,
		AttentionUnreachable, AttentionDrift, AttentionCertExpiry, AttentionSpoolDrops, AttentionBackupFailing, AttentionPending}
}

// Attention is one thing that needs an operator: an instance, a host or
// the domain (neither set), with the reason in words.
type Attention struct {
	Kind     string `json:"kind"`
	Group    string `json:"group,omitempty"`
	Instance string `json:"instance,omitempty"`
	Host     string `json:"host,omitempty"`
	Reason   string `json:"reason"`
	// Since is when it started, where known.
	Since time.Time `json:"since,omitzero"`
}
