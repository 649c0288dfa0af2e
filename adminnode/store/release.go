package store

import (
	"context"
	"fmt"
	"regexp"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Release is a gateway binary the admin node keeps for node managers to
// run (docs/upgrades.md). Its bytes are stored beside it (ReleaseBinary).
type Release struct {
	// Version names it: what a group pins.
	Version string `json:"version"`
	// SHA256 is the hex SHA-256 of the binary.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Signature is the domain key's Ed25519 signature of
	// apitypes.ReleaseMessage(Version, SHA256).
	Signature  []byte    `json:"signature"`
	UploadedAt time.Time `json:"uploaded_at"`
	UploadedBy string    `json:"uploaded_by,omitempty"`
}

var releaseVersionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// ValidReleaseVersion checks a release's version: a file name on the
// hosts, so letters, digits and ._+- only.
func ValidReleaseVersion(v string) error {
	if !releaseVersionRE.MatchString(v) {
		return fmt.Errorf("release version %q must match %s: %w", v, releaseVersionRE, ErrInvalid)
	}
	return nil
}

// Rollout states of a group's release change (ReleaseRollout.State).
const (
	RolloutRunning     = "rolling"
	RolloutDone        = "done"
	RolloutRollingBack = "rolling-back"
	RolloutRolledBack  = "rolled-back"
	// RolloutPaused: a batch failed and the rollout asked to pause
	// (OnFailurePause) rather than roll back; the instances done run To,
	// the others From, until an operator resumes it or rolls it back.
	RolloutPaused = "paused"
)

// What a rollout does when a batch fails (ReleaseRollout.OnFailure).
const (
	OnFailureRollback = "rollback"
	OnFailurePause    = "pause"
)

// GroupGateway is the gateway release a group runs and the change of it
// under way or last made.
type GroupGateway struct {
	// Version is the release the group's instances run once its rollout
	// is done; "" the node managers' own binary.
	Version string `json:"version,omitempty"`
	// MaxUnavailable is how many instances a rollout replaces at once
	// (0: 1).
	MaxUnavailable int `json:"max_unavailable,omitempty"`
	// Rollout is the current or last change of Version.
	Rollout *ReleaseRollout `json:"rollout,omitempty"`
	// History holds the earlier rollouts, newest first (at most
	// MaxRolloutHistory).
	History []ReleaseRollout `json:"history,omitempty"`
}

// MaxRolloutHistory bounds GroupGateway.History.
const MaxRolloutHistory = 20

// ReleaseRollout is a change of a group's release, instance by instance.
type ReleaseRollout struct {
	ID   uint64 `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
	// State is one of the Rollout* constants.
	State          string    `json:"state"`
	MaxUnavailable int       `json:"max_unavailable"`
	By             string    `json:"by,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	EndedAt        time.Time `json:"ended_at,omitzero"`
	// Done lists the instances that run To (or, rolling back, From again)
	// and passed their soak; Batch those being replaced now, since
	// BatchAt.
	Done    []string  `json:"done,omitempty"`
	Batch   []string  `json:"batch,omitempty"`
	BatchAt time.Time `json:"batch_at,omitzero"`
	// BatchErrors are the last errors Batch's instances reported when it
	// began: one still reported is an earlier attempt's (a failed
	// replacement leaves its error on the process that serves on), not
	// this batch's failure.
	BatchErrors map[string]string `json:"batch_errors,omitempty"`
	// SoakSince is when every instance of Batch was ready on the new
	// release, SoakPIDs their processes then: the batch passes once they
	// are still the ones serving after the soak.
	SoakSince time.Time      `json:"soak_since,omitzero"`
	SoakPIDs  map[string]int `json:"soak_pids,omitempty"`
	// SoakTotals are the request totals of the group's instances when
	// the soak began, to compare the error rate of the new processes
	// with the old ones' over it.
	SoakTotals map[string]SoakTotal `json:"soak_totals,omitempty"`
	// Error says why the rollout was rolled back or paused.
	Error string `json:"error,omitempty"`
	// OnFailure is OnFailurePause or OnFailureRollback ("": rollback).
	OnFailure string         `json:"on_failure,omitempty"`
	Events    []RolloutEvent `json:"events,omitempty"`
}

// SoakTotal is an instance's process and request totals at a point.
type SoakTotal struct {
	Boot     string `json:"boot"`
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
}

// RolloutEvent is one step of a rollout.
type RolloutEvent struct {
	At       time.Time `json:"at"`
	Instance string    `json:"instance,omitempty"`
	What     string    `json:"what"`
}

var (
	bucketReleases        = []byte("releases")
	bucketReleaseBinaries = []byte("release_binaries")
)

// PinnedBy returns the name of a group whose gateway needs release v, or
// "".
func PinnedBy(groups []Group, v string) string {
	for _, g := range groups {
		gw := g.Gateway
		if gw.Version == v {
			return g.Name
		}
		if r := gw.Rollout; r != nil && r.State != RolloutDone && r.State != RolloutRolledBack && (r.From == v || r.To == v) {
			return g.Name
		}
	}
	return ""
}

// PutRelease implements Store.
func (b *Bolt) PutRelease(ctx context.Context, r Release, binary []byte) (Release, error) {
	if err := ValidReleaseVersion(r.Version); err != nil {
		return Release{}, err
	}
	r.UploadedAt = stamp(r.UploadedAt)
	err := b.update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketReleases)
		if bk.Get([]byte(r.Version)) != nil {
			return fmt.Errorf("release %q: %w", r.Version, ErrExists)
		}
		if err := put(bk, []byte(r.Version), r); err != nil {
			return err
		}
		return tx.Bucket(bucketReleaseBinaries).Put([]byte(r.Version), binary)
	})
	if err != nil {
		return Release{}, err
	}
	return r, nil
}

// GetRelease implements Store.
func (b *Bolt) GetRelease(ctx context.Context, version string) (Release, error) {
	var r Release
	err := b.view(ctx, func(tx *bolt.Tx) error {
		ok, err := get(tx.Bucket(bucketReleases), version, &r)
		if err == nil && !ok {
			err = fmt.Errorf("release %q: %w", version, ErrNotFound)
		}
		return err
	})
	return r, err
}

// GetReleaseBinary implements Store.
func (b *Bolt) GetReleaseBinary(ctx context.Context, version string) ([]byte, error) {
	var out []byte
	err := b.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketReleaseBinaries).Get([]byte(version))
		if v == nil {
			return fmt.Errorf("release %q: %w", version, ErrNotFound)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// ListReleases implements Store.
func (b *Bolt) ListReleases(ctx context.Context) ([]Release, error) {
	var out []Release
	err := b.view(ctx, func(tx *bolt.Tx) (err error) {
		out, err = all[Release](tx.Bucket(bucketReleases), nil)
		return err
	})
	return out, err
}

// DeleteRelease implements Store.
func (b *Bolt) DeleteRelease(ctx context.Context, version string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketReleases, "release", version); err != nil {
			return err
		}
		groups, err := all[Group](tx.Bucket(bucketGroups), nil)
		if err != nil {
			return err
		}
		if g := PinnedBy(groups, version); g != "" {
			return fmt.Errorf("release %q is the gateway release of group %q: %w", version, g, ErrInUse)
		}
		if err := tx.Bucket(bucketReleases).Delete([]byte(version)); err != nil {
			return err
		}
		return tx.Bucket(bucketReleaseBinaries).Delete([]byte(version))
	})
}

// UpdateGroupGateway implements Store.
func (b *Bolt) UpdateGroupGateway(ctx context.Context, group string, change func(gw *GroupGateway) error) (Group, error) {
	var out Group
	err := b.update(ctx, func(tx *bolt.Tx) (err error) {
		out, err = modify(tx, bucketGroups, "group", group, func(cur *Group) error {
			gw := cur.Gateway
			if err := change(&gw); err != nil {
				return err
			}
			if gw.Version != "" && gw.Version != cur.Gateway.Version {
				if err := exists(tx, bucketReleases, "release", gw.Version); err != nil {
					return err
				}
			}
			cur.Gateway = gw
			return nil
		})
		return err
	})
	return out, err
}
