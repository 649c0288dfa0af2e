package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// Defaults of Config.
const (
	DefaultLoginTTL     = 12 * time.Hour
	DefaultMaxBodyBytes = 8 << 20
	// A group's traffic keeps 1000 routes and 1000 consumers apart:
	// enough for large configurations, and a bound on what the store
	// grows by whatever labels node managers send.
	DefaultTrafficMaxRoutes    = 1000
	DefaultTrafficMaxConsumers = 1000
	// touchEvery bounds how often a token's last use is written: a write
	// per request would make every read a write.
	touchEvery = time.Minute
)

// Server answers the admin API.
type Server struct {
	store     store.Store
	domain    store.Domain
	key       []byte
	secretKey *seal.Key
	caFP      string
	// authority is the domain CA's roots (certs.go); nil without a CA.
	authority  atomic.Pointer[ca.Authority]
	onCAChange func(*ca.Authority)
	certWarn   float64
	serverCert func() *x509.Certificate
	// name is this admin node's, for its server certificate.
	name       string
	listeners  listenerCache
	nodeTTL    time.Duration
	changes    *changes
	rollouts   rolloutRunner
	log        hclog.Logger
	cost       int
	loginTTL   time.Duration
	thresholds status.Thresholds
	driftGrace time.Duration
	maxBody    int64
	traffic    store.TrafficLimits
	// refused counts, by node, the traffic series refused since start
	// because they named an instance of another host or group.
	refusedMu sync.Mutex
	refused   map[string]uint64
	now       func() time.Time
	// loginAttempts slows down password guessing.
	loginAttempts *auth.Limiter
	router        *mux.Router

	obs   observed
	hosts hostIndex
	// caps is what each host's node manager last reported its gateways
	// can run, as written to the store.
	caps     hostCaps
	verified verifiedCerts
	// stillValid spares the store reads of nodeStillValid while nothing
	// changed.
	stillValid stillValid

	// reports wakes roll-out queries when an instance reports a change of
	// what it runs (heartbeats do not bump changes: that would wake every
	// node manager's blocking query).
	reports *changes

	// spec is the OpenAPI description, built on first use.
	specOnce sync.Once
	spec     []byte

	touchMu sync.Mutex
	touched map[string]time.Time

	// backups reports the scheduled backups (Config.Backups), or nil.
	backups func() apitypes.OverviewBackups

	// deps is the store for deployments: their resolved configurations
	// sealed at rest (sealdeploy.go). Every deployment read or write goes
	// through it; store stays the store itself, for what else it offers.
	deps sealingStore

	// collectors are the metrics of the admin node's own work (AddMetrics).
	collectorsMu sync.Mutex
	collectors   []prometheus.Collector
}

// New checks cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("new admin API: no store")
	}
	if cfg.Domain.Name == "" {
		return nil, errors.New("new admin API: no domain")
	}
	if len(cfg.SigningKey) == 0 {
		return nil, errors.New("new admin API: no signing key")
	}
	if cfg.SettingsKey == nil {
		return nil, errors.New("new admin API: no settings key")
	}
	logins, err := auth.NewLimiter(auth.DefaultLimits())
	if err != nil {
		return nil, fmt.Errorf("new admin API: %w", err)
	}
	s := &Server{
		store:         cfg.Store,
		deps:          sealingStore{Store: cfg.Store, key: cfg.SettingsKey},
		domain:        cfg.Domain,
		key:           cfg.SigningKey,
		secretKey:     cfg.SettingsKey,
		caFP:          cfg.CAFingerprint,
		onCAChange:    cfg.OnCAChange,
		certWarn:      cfg.CertWarnFraction,
		serverCert:    cfg.ServerCertificate,
		name:          cmp.Or(cfg.Name, "admin"),
		nodeTTL:       cfg.NodeCertTTL,
		log:           cfg.Logger,
		cost:          cfg.PasswordCost,
		loginTTL:      cfg.LoginTTL,
		maxBody:       cfg.MaxBodyBytes,
		now:           cfg.Now,
		loginAttempts: logins,
		touched:       map[string]time.Time{},
		traffic:       store.TrafficLimits{MaxRoutes: cfg.TrafficMaxRoutes, MaxConsumers: cfg.TrafficMaxConsumers},
		refused:       map[string]uint64{},
		backups:       cfg.Backups,
	}
	if s.traffic.MaxRoutes == 0 {
		s.traffic.MaxRoutes = DefaultTrafficMaxRoutes
	}
	if s.traffic.MaxConsumers == 0 {
		s.traffic.MaxConsumers = DefaultTrafficMaxConsumers
	}
	if s.traffic.MaxRoutes < 0 || s.traffic.MaxConsumers < 0 {
		return nil, fmt.Errorf("new admin API: traffic limits %d routes, %d consumers: must be positive", cfg.TrafficMaxRoutes, cfg.TrafficMaxConsumers)
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.cost == 0 {
		s.cost = auth.DefaultPasswordCost
	}
	if s.loginTTL == 0 {
		s.loginTTL = DefaultLoginTTL
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.obs.flushEvery = flushEvery
	if c, ok := s.store.(store.Coordinator); ok && c.Shared() {
		s.obs.flushEvery = sharedFlushEvery
	}
	if s.nodeTTL == 0 {
		s.nodeTTL = DefaultNodeCertTTL
	}
	switch {
	case s.certWarn == 0:
		s.certWarn = DefaultCertWarnFraction
	case s.certWarn < 0 || s.certWarn >= 1:
		return nil, fmt.Errorf("new admin API: certificate warning fraction %v: must be between 0 and 1", s.certWarn)
	}
	a, err := s.loadAuthority(cfg.Domain, cfg.CA)
	if err != nil {
		return nil, fmt.Errorf("new admin API: domain CA: %w", err)
	}
	if a != nil {
		s.authority.Store(a)
	}
	s.driftGrace = cfg.DriftGrace
	if s.driftGrace == 0 {
		s.driftGrace = DefaultDriftGrace
	}
	// Indexes of blocking queries start at the start time, so that after a
	// restart they differ from any a node manager holds.
	s.changes = newChanges(uint64(time.Now().UnixNano()))
	s.rollouts = rolloutRunner{kick: make(chan struct{}, 1), soak: cmp.Or(cfg.RolloutSoak, DefaultRolloutSoak),
		batchTimeout: cmp.Or(cfg.RolloutBatchTimeout, DefaultRolloutBatchTimeout)}
	s.reports = newChanges(0)
	s.thresholds = status.DefaultThresholds()
	if cfg.LostAfter != 0 {
		s.thresholds.LostAfter = cfg.LostAfter
	}
	if cfg.OfflineAfter != 0 {
		s.thresholds.OfflineAfter = cfg.OfflineAfter
	}
	switch {
	case cfg.RemoveAfter < 0:
		s.thresholds.RemoveAfter = 0
	case cfg.RemoveAfter > 0:
		s.thresholds.RemoveAfter = cfg.RemoveAfter
	}
	if err := s.thresholds.Validate(); err != nil {
		return nil, fmt.Errorf("new admin API: instance status thresholds: %w", err)
	}
	if err := s.loadObserved(context.Background()); err != nil {
		return nil, fmt.Errorf("new admin API: %w", err)
	}
	s.router = s.newRouter()
	return s, nil
}

// Handler returns the API's handler, which serves /api/v1 and nothing
// else.
func (s *Server) Handler() http.Handler { return s.router }

// principal is the authenticated caller.
type principal struct {
	user    string
	tokenID string
	kind    string
	expires time.Time
	authz   *rbac.Authorizer
}

// served is an answer that is not JSON, written by its own handler: the
// Prometheus exposition, whose format promhttp negotiates. Only for
// routes that change nothing, since it is neither audited nor wakes
// blocking queries.
type served struct{ http.Handler }

// request is one call as handlers see it.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	route *route
	vars  map[string]string
	who   *principal
	// node is the host of an agent route's client certificate.
	node   string
	id     string
	source string
	// group is the group of a group-scoped route, loaded and authorized
	// before the handler runs.
	group *store.Group
	// status overrides the route's success status.
	status int
	// The audit entry of a mutating call: target defaults to the path,
	// user (for logins) to the caller.
	auditTarget, auditGroup, auditUser, auditDetail string
	// auditAction replaces the route's action in the audit entry, for a
	// call that is another action than its route says (a dry run).
	auditAction string
	// abort cuts the connection after a streamed answer that failed
	// once under way (served).
	abort bool
}

// allowed checks perm on g (nil: the domain level).
func (q *request) allowed(perm string, g *store.Group) bool {
	return q.who != nil && q.who.authz.Allowed(perm, g)
}

func (q *request) need(perm string, g *store.Group) error {
	if !q.allowed(perm, g) {
		return forbidden(perm)
	}
	return nil
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// serve runs one route: authentication, group authorization, the
// handler, the answer and, for a mutating call, the audit entry.
func (s *Server) serve(rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := &request{
			w: w, r: r, ctx: r.Context(), route: rt, vars: mux.Vars(r),
			id: r.Header.Get("X-Request-Id"), source: sourceOf(r),
		}
		if q.id == "" || len(q.id) > 64 {
			q.id = newRequestID()
		}
		w.Header().Set("X-Request-Id", q.id)
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, cmp.Or(rt.maxBody, s.maxBody))
		}
		out, err := s.run(q)
		status := q.status
		if status == 0 {
			status = rt.status
		}
		if err != nil {
			e, internal := asAPIError(err)
			// The error says the database is out of reach, or the
			// database does not answer now: not the admin node's fault,
			// nor the request's; the client may retry, here or through
			// another admin node.
			if internal && (s.storeUnreachable(err) || s.storeAway(q.ctx)) {
				s.log.Warn("request refused: the store is unreachable", "request_id", q.id, "action", rt.action, "error", err)
				w.Header().Set("Retry-After", "1")
				e, internal = storeUnavailable(), false
			}
			// A caller that went away (a node manager's blocking query
			// at shutdown) is not the server's failure.
			if internal && !errors.Is(err, context.Canceled) {
				s.log.Error("request failed", "request_id", q.id, "action", rt.action, "error", err)
			}
			status = e.status
			writeError(w, e, q.id)
			if rt.mutates() && !rt.noAudit {
				s.audit(q, status, e.Error())
			}
			return
		}
		if h, ok := out.(served); ok {
			h.ServeHTTP(w, r)
			if rt.mutates() && !rt.noAudit {
				s.audit(q, cmp.Or(q.status, status), q.auditDetail)
			}
			if q.abort {
				// The answer was under way when it failed: cutting the
				// connection is how the client learns it is not whole.
				panic(http.ErrAbortHandler)
			}
			return
		}
		if out == nil && status == http.StatusOK {
			status = http.StatusNoContent
		}
		writeJSON(w, status, out)
		if rt.mutates() && !rt.agent {
			// Whatever an operator changed may concern node managers:
			// wake their blocking queries, which re-read and answer only
			// if their resource changed.
			s.changes.bump()
		}
		if rt.mutates() && !rt.noAudit {
			s.audit(q, status, q.auditDetail)
		}
	})
}

func (s *Server) run(q *request) (any, error) {
	if q.route.agent && !q.route.public {
		host, err := s.authenticateNode(q.r)
		if err != nil {
			return nil, err
		}
		q.node = host
		return q.route.handle(s, q)
	}
	if !q.route.public {
		who, err := s.authenticate(q.r)
		if err != nil {
			return nil, err
		}
		q.who = who
	}
	if q.route.perm != "" {
		if err := s.authorize(q); err != nil {
			return nil, err
		}
	}
	return q.route.handle(s, q)
}

// authorize checks the route's permission where the route says it
// applies. A group that does not exist is authorized as a group with no
// labels, so that the caller learns it is missing (404) only when a
// binding of theirs could cover it by name or for the whole domain.
func (s *Server) authorize(q *request) error {
	switch q.route.scope {
	case scopeDomain:
		return q.need(q.route.perm, nil)
	case scopeGroup, scopeQueryGroup:
		name := q.vars["group"]
		if q.route.scope == scopeQueryGroup {
			if name = q.r.URL.Query().Get("group"); name == "" {
				return badRequest("group", "the group parameter is required")
			}
		}
		q.auditGroup = name
		g, err := s.store.GetGroup(q.ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			if err := q.need(q.route.perm, &store.Group{Name: name}); err != nil {
				return err
			}
			return notFound("group %q not found", name)
		}
		if err != nil {
			return err
		}
		if err := q.need(q.route.perm, &g); err != nil {
			return err
		}
		q.group = &g
	}
	return nil
}

// authenticate resolves the bearer token of r to a user and its
// permissions.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	bearer, ok := strings.CutPrefix(h, "Bearer ")
	if h == "" {
		return nil, unauthorized("authentication required: send Authorization: Bearer <token>")
	}
	if !ok {
		return nil, unauthorized("Authorization must be a Bearer token")
	}
	id, secret, err := auth.ParseBearer(strings.TrimSpace(bearer))
	if err != nil {
		return nil, unauthorized("malformed token")
	}
	ctx := r.Context()
	tok, err := s.store.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized("invalid token")
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	switch {
	case !auth.SecretMatches(tok.SecretHash, secret):
		return nil, unauthorized("invalid token")
	case tok.Revoked:
		return nil, unauthorized("token revoked")
	case !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt):
		return nil, unauthorized("token expired")
	}
	u, err := s.store.GetUser(ctx, tok.User)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized("invalid token")
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, unauthorized("user %q is disabled", u.Name)
	}
	authz, err := s.authorizer(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	s.touch(ctx, tok.ID, now)
	return &principal{user: u.Name, tokenID: tok.ID, kind: tokenKind(tok), expires: tok.ExpiresAt, authz: authz}, nil
}

// Authorizer returns user's permissions as the API checks them, for the
// console to offer only what the API would allow.
func (s *Server) Authorizer(ctx context.Context, user string) (*rbac.Authorizer, error) {
	return s.authorizer(ctx, user)
}

func (s *Server) authorizer(ctx context.Context, user string) (*rbac.Authorizer, error) {
	bindings, err := s.store.ListRoleBindings(ctx, user)
	if err != nil {
		return nil, err
	}
	roles, err := s.store.ListRoles(ctx)
	if err != nil {
		return nil, err
	}
	return rbac.New(roles, bindings), nil
}

// touch records a token's use at most once per touchEvery.
func (s *Server) touch(ctx context.Context, id string, now time.Time) {
	s.touchMu.Lock()
	last, ok := s.touched[id]
	due := !ok || now.Sub(last) >= touchEvery
	if due {
		s.touched[id] = now
	}
	s.touchMu.Unlock()
	if !due {
		return
	}
	if err := s.store.TouchToken(ctx, id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("record token use", "token", id, "error", err)
	}
}

// audit appends the entry of a mutating call. The detail is the error
// message or what the handler chose: never a request body, which may hold
// secrets.
func (s *Server) audit(q *request, status int, detail string) {
	e := store.AuditEntry{
		Time:      s.now(),
		User:      q.auditUser,
		Action:    cmp.Or(q.auditAction, q.route.action),
		Target:    q.auditTarget,
		Group:     q.auditGroup,
		Status:    status,
		Detail:    detail,
		RequestID: q.id,
		Source:    q.source,
	}
	if e.User == "" && q.who != nil {
		e.User = q.who.user
	}
	if e.Target == "" {
		// Calls refused before their handler named a target: the path,
		// in the form handlers use ("groups/payments/deployments").
		e.Target = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(q.r.URL.Path, apitypes.Prefix), apitypes.AgentPrefix), "/")
	}
	switch {
	case status < 400:
		e.Result = store.AuditOK
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusTooManyRequests:
		e.Result = store.AuditDenied
	default:
		e.Result = store.AuditError
	}
	// The caller's context may be gone (client hung up); the record of
	// what was done must still be written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.ctx), 5*time.Second)
	defer cancel()
	if _, err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.Error("append audit entry", "action", e.Action, "request_id", q.id, "error", err)
	}
}

// configFrom decodes a configuration body, YAML or JSON (YAML is a
// superset), strictly.
func configFrom(q *request) (*deploy.Config, error) {
	data, err := readBody(q)
	if err != nil {
		return nil, err
	}
	cfg, err := deploy.Decode(data)
	if err != nil {
		var errs deploy.Errors
		if errors.As(err, &errs) {
			e := invalidConfig(errs)
			e.status, e.body.Code = http.StatusBadRequest, apitypes.CodeBadRequest
			return nil, e
		}
		return nil, badRequest("", "%v", err)
	}
	return cfg, nil
}
