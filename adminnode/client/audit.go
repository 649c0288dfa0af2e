package client

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// AuditFilter selects audit entries; zero fields match all. Since is
// inclusive and Until exclusive. Before is a cursor: only entries with a
// smaller Seq, so that the next page of a listing starts before the last
// Seq of the previous one. Limit 0 leaves the number to the server.
type AuditFilter struct {
	User   string
	Action string
	Group  string
	Since  time.Time
	Until  time.Time
	Limit  int
	Before uint64
}

func (f AuditFilter) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("user", f.User)
	set("action", f.Action)
	set("group", f.Group)
	if !f.Since.IsZero() {
		set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		set("limit", strconv.Itoa(f.Limit))
	}
	if f.Before > 0 {
		set("before", strconv.FormatUint(f.Before, 10))
	}
	return q
}

// Audit returns the audit entries f selects, newest first.
func (c *Client) Audit(ctx context.Context, f AuditFilter) ([]apitypes.AuditEntry, error) {
	var out []apitypes.AuditEntry
	err := c.get(ctx, "/audit", f.query(), &out)
	return out, err
}
