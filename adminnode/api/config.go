package api

import (
	"crypto/ed25519"
	"crypto/x509"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Config is what a Server needs. Store, Domain, SigningKey and
// SettingsKey are required; zero values of the rest take the defaults
// noted.
type Config struct {
	Store store.Store
	// Domain is the store's domain record, read once at start.
	Domain     store.Domain
	SigningKey ed25519.PrivateKey
	// SettingsKey seals the environments' secrets in the store.
	SettingsKey *seal.Key
	// CA signs node certificates and verifies node managers' client
	// certificates; without it the agent API answers 503.
	CA *ca.CA
	// CAFingerprint is shown by GET /domain for node managers to pin.
	CAFingerprint string
	// OnCAChange, when set, is called with the new roots after a CA
	// rotation or retirement, made here or read from the store by
	// ReloadCA: the server certificate may need a new issuer.
	OnCAChange func(*ca.Authority)
	// ServerCertificate, when set, returns the admin node's current
	// HTTPS certificate, whose expiry GET /certificates shows.
	ServerCertificate func() *x509.Certificate
	// Name names this admin node among those of the store.
	Name string
	// CertWarnFraction is the fraction of its life left under which a
	// certificate is in the warning state (DefaultCertWarnFraction).
	CertWarnFraction float64
	// NodeCertTTL is the lifetime of node certificates (DefaultNodeCertTTL).
	NodeCertTTL time.Duration
	Logger      hclog.Logger
	// PasswordCost is the bcrypt cost of new passwords (auth.DefaultPasswordCost).
	PasswordCost int
	// LoginTTL is the lifetime of login tokens (12 h).
	LoginTTL time.Duration
	// LostAfter, OfflineAfter and RemoveAfter are the instance status
	// thresholds (30 s, 2 h, 7 days; RemoveAfter < 0 disables removal).
	LostAfter, OfflineAfter, RemoveAfter time.Duration
	// DriftGrace is how long an instance may run another deployment than
	// its group's current one before the group's summary flags it
	// (DefaultDriftGrace).
	DriftGrace time.Duration
	// MaxBodyBytes bounds request bodies (8 MiB).
	MaxBodyBytes int64
	// TrafficMaxRoutes and TrafficMaxConsumers bound the distinct
	// service/route pairs and consumers of a group's traffic
	// (DefaultTrafficMaxRoutes, DefaultTrafficMaxConsumers); beyond, the
	// label folds into "(other)".
	TrafficMaxRoutes, TrafficMaxConsumers int
	// RolloutSoak is how long the instances of a rolling upgrade's batch
	// must stay ready on their new process before the next batch
	// (DefaultRolloutSoak); RolloutBatchTimeout, how long a batch may take
	// to be ready (DefaultRolloutBatchTimeout).
	RolloutSoak, RolloutBatchTimeout time.Duration
	// Now is the clock (time.Now); tests move it.
	Now func() time.Time
	// Backups reports the admin node's scheduled backups, for the
	// overview and the Prometheus metrics; nil when it has none.
	Backups func() apitypes.OverviewBackups
}
