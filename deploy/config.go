package deploy

// Config is what a group serves. It travels from the admin node to every
// gateway of the group, and it is what a standalone gateway reads from its
// declarative file. The json tags are the field names of both the YAML and
// the JSON forms, and the field paths of validation errors.
//
// Any string field may hold placeholders (package deploy/placeholder)
// unless it is tagged placeholder:"no": the names that identify resources
// and the references to them, and the keywords that choose how other
// fields are read. A field tagged placeholder:"secret" holds a secret,
// which a promotion package carries only as a ${secret:NAME} placeholder.
// A new field is therefore placeholder-capable and not secret unless
// tagged.
type Config struct {
	Upstreams      []Upstream    `json:"upstreams,omitempty"`
	Services       []Service     `json:"services,omitempty"`
	Consumers      []Consumer    `json:"consumers,omitempty"`
	Certificates   []Certificate `json:"certificates,omitempty"`
	GlobalPolicies []Policy      `json:"global_policies,omitempty"`
}

// Service binds routes to an upstream, with the policies that apply to all
// of its routes.
type Service struct {
	Name     string   `json:"name" placeholder:"no"`
	Upstream string   `json:"upstream" placeholder:"no"`
	Routes   []Route  `json:"routes,omitempty"`
	Policies []Policy `json:"policies,omitempty"`
}

// Route selects requests for its service.
//
// A path is exact ("/orders"), has parameter segments ("/orders/{id}"), or
// is a prefix when its last segment is "*" ("/api/*" matches "/api",
// "/api/" and everything below). Hosts are exact ("api.example.com") or a
// leading wildcard ("*.example.com"); no hosts means any host. No methods
// means any method.
type Route struct {
	Name    string        `json:"name" placeholder:"no"`
	Hosts   []string      `json:"hosts,omitempty"`
	Paths   []string      `json:"paths"`
	Methods []string      `json:"methods,omitempty" placeholder:"no"`
	Headers []HeaderMatch `json:"headers,omitempty"`
	// StripPrefix removes the matched literal prefix of a prefix path
	// ("/api/*" turns "/api/v1/x" into "/v1/x") before proxying.
	StripPrefix bool `json:"strip_prefix,omitempty"`
	// Rewrite replaces the whole upstream path; "{name}" inserts the value
	// of a path parameter.
	Rewrite string `json:"rewrite,omitempty"`
	// Priority orders routes that match the same path: higher first.
	Priority int      `json:"priority,omitempty"`
	Policies []Policy `json:"policies,omitempty"`
}

// HeaderMatch requires a request header to hold one of Values (compared
// exactly), or only to be present when Values is empty.
type HeaderMatch struct {
	Name   string   `json:"name"`
	Values []string `json:"values,omitempty"`
}

// Balancer names.
const (
	BalancerRoundRobin       = "round-robin"
	BalancerLeastConnections = "least-connections"
	BalancerConsistentHash   = "consistent-hash"
)

// Hash sources for the consistent-hash balancer.
const (
	HashOnHeader   = "header"
	HashOnCookie   = "cookie"
	HashOnClientIP = "client-ip"
)

// Upstream is a set of targets and how traffic is spread over them.
type Upstream struct {
	Name    string   `json:"name" placeholder:"no"`
	Targets []Target `json:"targets"`
	// Balancer is round-robin (the default), least-connections or
	// consistent-hash.
	Balancer string   `json:"balancer,omitempty" placeholder:"no"`
	HashOn   *HashOn  `json:"hash_on,omitempty"`
	Timeouts Timeouts `json:"timeouts,omitempty"`
	// Retries is how many other targets an idempotent request (GET, HEAD,
	// OPTIONS, PUT, DELETE without a streamed body) is tried on when a
	// connection fails.
	Retries     int                 `json:"retries,omitempty"`
	HealthCheck *ActiveHealthCheck  `json:"health_check,omitempty"`
	Passive     *PassiveHealthCheck `json:"passive,omitempty"`
}

// HashOn is the key of the consistent-hash balancer.
type HashOn struct {
	// Source is header, cookie or client-ip.
	Source string `json:"source" placeholder:"no"`
	// Name is the header or cookie name; empty for client-ip.
	Name string `json:"name,omitempty"`
}

// Target is one upstream server.
type Target struct {
	// Address is host:port.
	Address string `json:"address"`
	// Weight is relative to the other targets; 0 means the default, 1.
	Weight int `json:"weight,omitempty"`
}

// Timeouts of the connections to an upstream's targets. Zero means the
// default (connect 5s, read 60s, write 60s).
type Timeouts struct {
	Connect Duration `json:"connect,omitempty"`
	Read    Duration `json:"read,omitempty"`
	Write   Duration `json:"write,omitempty"`
}

// ActiveHealthCheck probes every target with an HTTP GET.
type ActiveHealthCheck struct {
	Path     string   `json:"path"`
	Interval Duration `json:"interval,omitempty"` // default 5s
	Timeout  Duration `json:"timeout,omitempty"`  // default 2s
	// HealthyThreshold consecutive successes mark an unhealthy target
	// healthy again; default 2.
	HealthyThreshold int `json:"healthy_threshold,omitempty"`
	// UnhealthyThreshold consecutive failures mark a target unhealthy;
	// default 3.
	UnhealthyThreshold int `json:"unhealthy_threshold,omitempty"`
	// Statuses that count as success; default 200-399.
	Statuses []int `json:"statuses,omitempty"`
}

// PassiveHealthCheck ejects a target after consecutive failed proxied
// requests (connection errors, timeouts, and the listed statuses).
type PassiveHealthCheck struct {
	ConsecutiveFailures int `json:"consecutive_failures"`
	// EjectFor is how long an ejected target is left out; default 30s.
	EjectFor Duration `json:"eject_for,omitempty"`
	// Statuses that count as failures besides connection errors; default
	// none.
	Statuses []int `json:"statuses,omitempty"`
}

// Consumer is an API client known by its credentials.
type Consumer struct {
	Name        string       `json:"name" placeholder:"no"`
	Credentials []Credential `json:"credentials,omitempty"`
	Policies    []Policy     `json:"policies,omitempty"`
}

// Credential types.
const (
	CredentialKey   = "key"
	CredentialBasic = "basic"
	CredentialJWT   = "jwt"
)

// Credential identifies a consumer. Secrets are write-only on the admin
// API and never logged.
type Credential struct {
	// Type is key, basic or jwt.
	Type     string `json:"type" placeholder:"no"`
	Key      string `json:"key,omitempty" placeholder:"secret"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty" placeholder:"secret"`
	// Subject is the JWT "sub" (or configured claim) identifying the
	// consumer; Secret is the HMAC secret or PEM public key.
	Subject string `json:"subject,omitempty"`
	Secret  string `json:"secret,omitempty" placeholder:"secret"`
}

// Certificate is served on the TLS listener to clients whose SNI matches
// one of SNIs (exact or "*.example.com").
type Certificate struct {
	Name string   `json:"name" placeholder:"no"`
	SNIs []string `json:"snis"`
	Cert string   `json:"cert"`                     // PEM chain
	Key  string   `json:"key" placeholder:"secret"` // PEM private key
}

// Policy is a named policy with its own configuration, checked by the
// policy's schema.
type Policy struct {
	Name   string         `json:"name" placeholder:"no"`
	Config map[string]any `json:"config,omitempty"`
}
