package status

import (
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// The statuses, as shown to users.
const (
	Healthy        = "Healthy"
	OnlyHeartbeat  = "Only Heartbeat"
	LostConnection = "Lost Connection"
	Offline        = "Offline"
	Pending        = "Pending"
)

// Statuses returns every status, in the order a dashboard lists them.
func Statuses() []string {
	return []string{Healthy, OnlyHeartbeat, LostConnection, Offline, Pending}
}

// Thresholds are the heartbeat ages at which an instance's status changes.
type Thresholds struct {
	// LostAfter: no heartbeat for longer than this is Lost Connection.
	// Node managers heartbeat every 5 s, so the default of 30 s survives
	// a few lost heartbeats.
	LostAfter time.Duration
	// OfflineAfter: no heartbeat for longer than this is Offline.
	OfflineAfter time.Duration
	// RemoveAfter: no heartbeat for longer than this and the instance is
	// due for removal. 0 keeps instances forever.
	RemoveAfter time.Duration
}

// DefaultThresholds returns API7's thresholds: 30 s, 2 h and 7 days.
func DefaultThresholds() Thresholds {
	return Thresholds{
		LostAfter:    30 * time.Second,
		OfflineAfter: 2 * time.Hour,
		RemoveAfter:  7 * 24 * time.Hour,
	}
}

// Validate checks that the thresholds are positive and in order, naming
// the configuration field of each problem; it reports all of them at once.
func (t Thresholds) Validate() error {
	var errs []error
	if t.LostAfter <= 0 {
		errs = append(errs, fmt.Errorf("lost_after: must be positive (got %s)", t.LostAfter))
	}
	if t.OfflineAfter <= t.LostAfter {
		errs = append(errs, fmt.Errorf("offline_after: must be longer than lost_after (%s)", t.LostAfter))
	}
	if t.RemoveAfter != 0 && t.RemoveAfter <= t.OfflineAfter {
		errs = append(errs, fmt.Errorf("remove_after: must be 0 (never) or longer than offline_after (%s)", t.OfflineAfter))
	}
	return errors.Join(errs...)
}

// Observation is what the admin node last heard about one instance.
type Observation struct {
	LastHeartbeat     time.Time // zero: never
	AppliedDeployment uint64
	AppliedChecksum   string
	Ready             bool
	// LastError is what the instance last reported failing, such as a
	// deployment it refused; an instance with one is not Healthy even if
	// it still runs the current deployment, because it is not in the
	// state its node manager is trying to bring it to.
	LastError string
}

// Current is the group's current deployment (Number 0: none yet).
type Current struct {
	Number   uint64
	Checksum string
	// Skipped are the instances it was not deployed to (a partial
	// deployment).
	Skipped []apitypes.SkippedInstance
}

// Derive returns the status of an instance at now.
func (t Thresholds) Derive(obs Observation, cur Current, now time.Time) string {
	if obs.LastHeartbeat.IsZero() {
		return Pending
	}
	switch silence := now.Sub(obs.LastHeartbeat); {
	case silence > t.OfflineAfter:
		return Offline
	case silence > t.LostAfter:
		return LostConnection
	}
	if obs.Ready && obs.LastError == "" && obs.AppliedDeployment == cur.Number && obs.AppliedChecksum == cur.Checksum {
		return Healthy
	}
	return OnlyHeartbeat
}

// DueForRemoval reports whether the instance has been silent for longer
// than RemoveAfter. Instances never heard from are not: an operator created
// them and is the one to remove them.
func (t Thresholds) DueForRemoval(obs Observation, now time.Time) bool {
	return t.RemoveAfter > 0 && !obs.LastHeartbeat.IsZero() && now.Sub(obs.LastHeartbeat) > t.RemoveAfter
}
