package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/boltfile"
)

// Keep is how many configurations a store holds: the current one and the
// previous ten.
const Keep = 11

// Record is one applied configuration.
type Record struct {
	// Seq orders records; the highest is the newest.
	Seq uint64 `json:"seq"`
	// Checksum is "sha256:" + hex of Config.
	Checksum  string    `json:"checksum"`
	AppliedAt time.Time `json:"applied_at"`
	// Origin says where the configuration came from ("file:/etc/gw.yaml").
	Origin string `json:"origin"`
	// Config is the canonical JSON encoding of the configuration.
	Config []byte `json:"config"`
	// Deployment is the number of the signed deployment the configuration
	// came in, so that a gateway restarted under a node manager knows what
	// it serves and refuses older deployments; 0 for a configuration from
	// another source (a file). Added to schema 1 without a new version:
	// older records decode with 0 and older binaries ignore the field.
	Deployment uint64 `json:"deployment,omitempty"`
}

// Verify reports whether Config still matches Checksum, so that a record
// damaged on disk is never applied.
func (r Record) Verify() error {
	sum := sha256.Sum256(r.Config)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != r.Checksum {
		return fmt.Errorf("record %d: checksum mismatch: stored %s, computed %s", r.Seq, r.Checksum, got)
	}
	return nil
}

// Store is where a gateway keeps its applied configurations. Both the bolt
// and the in-memory implementations satisfy it.
type Store interface {
	// Save appends r as the newest record, assigning its Seq, and prunes
	// records beyond Keep.
	Save(r Record) (Record, error)
	// List returns the records, newest first.
	List() ([]Record, error)
	Close() error
}

// ErrNewerSchema is returned for a file written by a newer gatehouse: it is
// left untouched rather than guessed at.
var ErrNewerSchema = boltfile.ErrNewerSchema
