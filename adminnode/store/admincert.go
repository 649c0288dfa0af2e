package store

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AdminCert is an admin node's HTTPS certificate as that node last
// recorded it, so that every admin node of a shared store can list the
// certificates of all (GET /certificates): each node serves its own only.
type AdminCert struct {
	// Node names the admin node (its host name and listen address).
	Node string `json:"node"`
	// DER is the certificate, which holds nothing secret.
	DER []byte `json:"der"`
	// RecordedAt is when the node last wrote the record: it does at start,
	// after each renewal and at intervals, so an old record is a node gone.
	RecordedAt time.Time `json:"recorded_at"`
}

var bucketAdminCerts = []byte("admin_certs")

// PutAdminCert implements Store.
func (b *Bolt) PutAdminCert(ctx context.Context, c AdminCert) error {
	if c.Node == "" {
		return fmt.Errorf("record admin certificate: no node name: %w", ErrInvalid)
	}
	c.RecordedAt = stamp(c.RecordedAt)
	return b.update(ctx, func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketAdminCerts), []byte(c.Node), c)
	})
}

// ListAdminCerts implements Store.
func (b *Bolt) ListAdminCerts(ctx context.Context) ([]AdminCert, error) {
	return list[AdminCert](ctx, b, bucketAdminCerts, nil)
}
