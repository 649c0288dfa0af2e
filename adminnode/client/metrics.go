package client

import (
	"context"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// MetricsQuery selects a group's traffic: optionally one service, route,
// consumer or instance, over the last Since or from From to To (zero To:
// now), by Step (zero: the server picks one from the range), broken down
// By service, route, consumer or instance when set.
type MetricsQuery struct {
	Group    string
	Service  string
	Route    string
	Consumer string
	Instance string
	Since    time.Duration
	From     time.Time
	To       time.Time
	Step     time.Duration
	By       string
}

func (m MetricsQuery) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("group", m.Group)
	set("service", m.Service)
	set("route", m.Route)
	set("consumer", m.Consumer)
	set("instance", m.Instance)
	set("by", m.By)
	if m.Since > 0 {
		set("since", m.Since.String())
	}
	if !m.From.IsZero() {
		set("from", m.From.Format(time.RFC3339))
	}
	if !m.To.IsZero() {
		set("to", m.To.Format(time.RFC3339))
	}
	if m.Step > 0 {
		set("step", m.Step.String())
	}
	return q
}

// Metrics returns a group's traffic as m selects it.
func (c *Client) Metrics(ctx context.Context, m MetricsQuery) (apitypes.MetricsAnswer, error) {
	var out apitypes.MetricsAnswer
	err := c.get(ctx, "/metrics/query", m.query(), &out)
	return out, err
}
