package apitypes

import "time"

// GatewaySettings are the dynamic settings of a group's gateways or of
// one instance (docs/gateway.md#dynamic-settings): changed at run time,
// with no restart and no redeploy. The body of PUT
// /groups/{group}/settings and PUT /instances/{instance}/settings, which
// replace the settings of that level; an empty body clears them. An
// instance's fields, when set, win over its group's.
type GatewaySettings struct {
	// LogLevel is trace, debug, info, warn or error; "" is not set here
	// (the level the gateway was started with, when set nowhere).
	LogLevel string `json:"log_level,omitempty"`
	// AccessLog turns the access log on (logging SamplePercent of the
	// exchanges, 100 when 0) or off; nil is not set here (off, when set
	// nowhere).
	AccessLog *AccessLogSetting `json:"access_log,omitempty"`
	// Trace logs the requests of one route in detail for a while.
	Trace *TraceSetting `json:"trace,omitempty"`
}

// AccessLogSetting turns the access log on or off.
type AccessLogSetting struct {
	Enabled bool `json:"enabled"`
	// SamplePercent (1 to 100) of the exchanges are logged, spread
	// evenly; 0 means 100.
	SamplePercent int `json:"sample_percent,omitempty"`
}

// TraceSetting traces the requests of a route: in a request, For (a
// duration, "10m", at most 24h) says how long, or Until till when (in the
// next 24h); the admin node keeps Until, which answers carry. Gateways
// stop tracing at Until by themselves.
type TraceSetting struct {
	// Route is a route's name, or "service/route" to tell routes of the
	// same name apart.
	Route string    `json:"route"`
	For   string    `json:"for,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// InstanceSettings is the body of GET /instances/{instance}/settings: the
// settings of the instance's group and its own, what its gateway is to
// run (Effective) and what its gateway last reported it runs (Applied,
// nil until it has reported).
type InstanceSettings struct {
	Instance  string                `json:"instance"`
	Group     string                `json:"group"`
	OfGroup   GatewaySettings       `json:"group_settings"`
	Own       GatewaySettings       `json:"instance_settings"`
	Effective AgentGatewaySettings  `json:"effective"`
	Applied   *AgentGatewaySettings `json:"applied,omitempty"`
}

// AgentGatewaySettings are the dynamic settings one gateway runs, the
// group's and the instance's merged: what the node manager delivers to
// the gateway's control endpoint, and what heartbeats report back. The
// zero value is the gateway as it was started.
type AgentGatewaySettings struct {
	LogLevel string `json:"log_level,omitempty"`
	// AccessLogPercent is 0 with the access log off, else the percentage
	// of exchanges logged.
	AccessLogPercent int `json:"access_log_percent,omitempty"`
	// TraceRoute is traced until TraceUntil.
	TraceRoute string    `json:"trace_route,omitempty"`
	TraceUntil time.Time `json:"trace_until,omitzero"`
}
