package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The domain's traffic is not kept in PostgreSQL yet (time-partitioned
// tables are the next step): each traffic method fails loudly rather than
// pretend, so that an admin node on this store cannot lose metrics
// silently.
func unsupported(method string) error {
	return fmt.Errorf("%s: domain traffic on the PostgreSQL store: %w", method, errors.ErrUnsupported)
}

// IngestTraffic implements store.Store: not yet, errors.ErrUnsupported.
func (p *PG) IngestTraffic(context.Context, traffic.Batch, store.TrafficLimits, time.Time) (store.TrafficIngest, error) {
	return store.TrafficIngest{}, unsupported("IngestTraffic")
}

// ResetTrafficNode implements store.Store: not yet, errors.ErrUnsupported.
func (p *PG) ResetTrafficNode(context.Context, string) error {
	return unsupported("ResetTrafficNode")
}

// ListTrafficNodes implements store.Store: not yet, errors.ErrUnsupported.
func (p *PG) ListTrafficNodes(context.Context) ([]store.TrafficNode, error) {
	return nil, unsupported("ListTrafficNodes")
}

// QueryTraffic implements store.Store: not yet, errors.ErrUnsupported.
func (p *PG) QueryTraffic(context.Context, store.TrafficQuery) (store.TrafficResult, error) {
	return store.TrafficResult{}, unsupported("QueryTraffic")
}

// TrafficTotals implements store.Store: not yet, errors.ErrUnsupported.
func (p *PG) TrafficTotals(context.Context) ([]store.TrafficGroup, error) {
	return nil, unsupported("TrafficTotals")
}

// MaintainTraffic implements store.Store: not yet, errors.ErrUnsupported.
func (p *PG) MaintainTraffic(context.Context, time.Time) (store.TrafficMaintenance, error) {
	return store.TrafficMaintenance{}, unsupported("MaintainTraffic")
}
