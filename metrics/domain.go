package metrics

// Names of the admin node's metrics of the domain's traffic
// (GET /api/v1/metrics/prometheus): the totals of every group and service
// since their first batch, and what the admin node received of the node
// managers' batches. docs/grafana/gatehouse-domain.json queries them.
const (
	// DomainRequests counts requests by group, service and status class.
	DomainRequests = "gatehouse_domain_requests_total"
	// DomainDuration is the latency histogram by group and service, with
	// the buckets of LatencyBuckets.
	DomainDuration = "gatehouse_domain_request_duration_seconds"
	DomainBytesIn  = "gatehouse_domain_request_bytes_total"
	DomainBytesOut = "gatehouse_domain_response_bytes_total"
	// DomainFolded counts the requests whose route or consumer (label
	// "label") was folded into "(other)" by the group's limits, and
	// DomainLabels the distinct routes and consumers the group tracks.
	DomainFolded = "gatehouse_domain_folded_requests_total"
	DomainLabels = "gatehouse_domain_tracked_labels"

	// Per node (host), shown to domain-wide readers only: batches stored
	// and retries acknowledged (label "result": stored, duplicate), Seqs
	// that never arrived, batches the node manager reported dropped from
	// its spool, the time of its last batch, and series stored, skipped
	// (group deleted) or refused (instance of another host).
	AdminTrafficBatches   = "gatehouse_admin_traffic_batches_total"
	AdminTrafficLost      = "gatehouse_admin_traffic_lost_batches_total"
	AdminTrafficDropped   = "gatehouse_admin_traffic_dropped_batches_total"
	AdminTrafficLastBatch = "gatehouse_admin_traffic_last_batch_timestamp_seconds"
	AdminTrafficSeries    = "gatehouse_admin_traffic_series_total"

	// The scheduled backups of the admin node answering (--backup-to),
	// shown to domain-wide readers only: runs by result (ok, error), the
	// times of the last success and failure, the size of the last backup
	// and how many backups the location keeps; running is 1 while this
	// admin node holds the lease and so takes them.
	AdminBackups           = "gatehouse_admin_backups_total"
	AdminBackupLastSuccess = "gatehouse_admin_backup_last_success_timestamp_seconds"
	AdminBackupLastFailure = "gatehouse_admin_backup_last_failure_timestamp_seconds"
	AdminBackupLastSize    = "gatehouse_admin_backup_last_size_bytes"
	AdminBackupKept        = "gatehouse_admin_backups_kept"
	AdminBackupRunning     = "gatehouse_admin_backup_running"

	// The certificates the domain depends on (GET /api/v1/certificates)
	// that the caller may see, by kind (ca, admin-server, node, listener),
	// name and group: when each expires, the fraction of its life left,
	// and 1 when it is in the warning state or expired (admin run
	// --cert-warn-fraction).
	CertificateExpiry   = "gatehouse_certificate_expiry_timestamp_seconds"
	CertificateLifeLeft = "gatehouse_certificate_life_left_ratio"
	CertificateWarning  = "gatehouse_certificate_warning"
)
