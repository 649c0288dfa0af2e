package pgstore

import (
	"context"
	"fmt"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// PutAdminCert implements store.Store.
func (p *PG) PutAdminCert(ctx context.Context, c store.AdminCert) error {
	if c.Node == "" {
		return fmt.Errorf("record admin certificate: no node name: %w", store.ErrInvalid)
	}
	c.RecordedAt = stamp(c.RecordedAt)
	doc, err := encode(c)
	if err != nil {
		return err
	}
	_, err = p.pool.Exec(ctx, `INSERT INTO admin_certs VALUES ($1, $2)
		ON CONFLICT (node) DO UPDATE SET doc = EXCLUDED.doc`, c.Node, doc)
	return err
}

// ListAdminCerts implements store.Store.
func (p *PG) ListAdminCerts(ctx context.Context) ([]store.AdminCert, error) {
	return listDocs[store.AdminCert](ctx, p.pool, "SELECT doc FROM admin_certs ORDER BY node")
}
