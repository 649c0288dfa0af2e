package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/evloop"
	"github.com/gatehouse/gatehouse/gateway/handover"
	"github.com/gatehouse/gatehouse/gateway/proxy"
	"github.com/gatehouse/gatehouse/gateway/store"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/internal/readyfile"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/objstore"
	"github.com/gatehouse/gatehouse/policy/catalog"
	"github.com/gatehouse/gatehouse/pubseal"
)

// Options configure a gateway process.
type Options struct {
	Instance string
	Group    string
	// Listen, TLSListen and StatusListen are the traffic, HTTPS traffic
	// and status addresses; an empty TLSListen serves no HTTPS.
	Listen       string
	TLSListen    string
	StatusListen string
	// DataDir holds gateway.db; empty keeps applied configurations in
	// memory only.
	DataDir string
	// PluginDir holds the binaries of external policies; empty means
	// <DataDir>/plugins.
	PluginDir string
	// ConfigPath is the declarative file of standalone mode.
	ConfigPath string
	// NodeManager is the base URL of the node manager's local API: set,
	// the node manager is the gateway's source instead of a file (the two
	// exclude each other) and deployments must be signed by DomainKey.
	NodeManager string
	// ConfigURL is the object storage URL of the group's published
	// deployment (s3://bucket/prefix/groups/<group>/current): set, it is
	// the gateway's source instead of a file or a node manager, read at
	// start and every ConfigPoll (DefaultConfigPoll), and deployments must
	// be signed by DomainKey. ObjectStorage says how to open it.
	ConfigURL     string
	ConfigPoll    time.Duration
	ObjectStorage objstore.Options
	// DomainKey is the domain's deployment key.
	DomainKey ed25519.PublicKey
	// PublishDomain and PublishKeys open the published deployment of
	// ConfigURL (package pubseal): the domain it is sealed for and the
	// domain's publish keys (gateway --config-key).
	PublishDomain string
	PublishKeys   []*pubseal.Key
	// InstanceSecret authenticates the instance to the node manager.
	InstanceSecret string
	// GossipListen is where the gateway gossips with its group's peers
	// under a node manager ("" joins no gossip); GossipAdvertise, the
	// address they reach it at when that is not the bound one.
	GossipListen, GossipAdvertise string
	// ReportInterval is how often the gateway reports to the node manager
	// besides after each deployment; 0 means 10 s.
	ReportInterval time.Duration
	// WatchWait is the wait of a blocking query to the node manager; 0
	// means localapi.DefaultWait.
	WatchWait time.Duration
	// WatchInterval is how often the file is checked for changes.
	WatchInterval time.Duration
	// DrainTimeout bounds how long shutdown waits for in-flight requests.
	DrainTimeout time.Duration
	// Engine serves the HTTP listener: EngineEvloop (the default) or
	// EngineFasthttp.
	Engine string
	// Profiling serves Go's /debug/pprof on ProfilingListen, a loopback
	// address (DefaultProfilingListen when empty), never on the status
	// port.
	Profiling       bool
	ProfilingListen string
	// Listening, when set, is called by Run once every listener is bound
	// and before anything is served, with the bound addresses by flag
	// name ("listen", "tls_listen", "status_listen", "pprof_listen"): a
	// port 0 in the options is a real port there. An error stops Run.
	Listening func(addrs map[string]string) error
	// Takeover holds the listening sockets of the gateway process this one
	// replaces (package handover, gateway --takeover): Run serves on those
	// bound to the same addresses, starts serving once a configuration is
	// applied, then tells the old process to drain; it joins the gossip
	// once the old process has exited.
	Takeover *handover.Taken
	// TakeoverReadyFile, with Takeover, is written (this process's pid)
	// once the replaced process was told to drain: the node manager's
	// sign that the new process serves, however long the old one drains.
	TakeoverReadyFile string
	Logger            hclog.Logger
	// Version is the binary's version, reported as it is. FeatureLevel is
	// the highest configuration feature level the gateway applies
	// (deploy.FeatureLevel when 0): a configuration that needs more is
	// refused, naming the field that needs it.
	Version      string
	FeatureLevel int
}

// Gateway is one gateway process.
type Gateway struct {
	opts     Options
	logger   hclog.Logger
	store    store.Store
	aside    string // where a damaged store was moved at start, if it was
	registry *upstream.Registry
	proxy    *proxy.Proxy
	fast     *fasthttp.Server
	policies *resources
	metrics  *metrics.Gateway
	gatherer prometheus.Gatherer

	applyMu sync.Mutex
	lastErr atomic.Pointer[applyError]
	// deployment is the number of the deployment served (0: none, or a
	// configuration from a file); set with the snapshot, under applyMu.
	deployment atomic.Uint64
	remote     *remote // the node manager source; nil in standalone mode
	// published is the object storage source; nil unless ConfigURL is set.
	published *published
	// publishedOK says whether the read of the published deployment at
	// start worked.
	publishedOK bool
	draining    atomic.Bool
	started     time.Time
	// boot is unique to this process: the node manager tells a restart by
	// it, since the traffic counts then start again from zero.
	boot string

	listenersMu sync.Mutex
	listeners   []listenerInfo

	fileMu  sync.Mutex
	fileSum string

	peers peering

	// dyn holds the dynamic settings; access and tracer write the access
	// log and request traces.
	dyn            dynamic
	access, tracer hclog.Logger
}

type applyError struct {
	Message string    `json:"message"`
	Origin  string    `json:"origin"`
	At      time.Time `json:"at"`
}

type listenerInfo struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// New opens the gateway's store and prepares its parts; nothing listens
// until Run.
func New(opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.WatchInterval == 0 {
		opts.WatchInterval = time.Second
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.FeatureLevel == 0 {
		opts.FeatureLevel = deploy.FeatureLevel
	}
	sources := 0
	for _, s := range []string{opts.ConfigPath, opts.NodeManager, opts.ConfigURL} {
		if s != "" {
			sources++
		}
	}
	if sources > 1 {
		return nil, errors.New("a gateway has one source: a configuration file, a node manager or a published deployment's URL")
	}
	if opts.Profiling {
		if opts.ProfilingListen == "" {
			opts.ProfilingListen = DefaultProfilingListen
		}
		if err := CheckProfilingListen(opts.ProfilingListen); err != nil {
			return nil, fmt.Errorf("pprof listen address: %w", err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := &Gateway{
		opts:     opts,
		logger:   opts.Logger,
		metrics:  metrics.NewGateway(reg, opts.Group),
		gatherer: reg,
		started:  time.Now(),
		boot:     newBoot(),
	}
	g.peers.held = opts.Takeover != nil
	g.proxy = proxy.New(opts.Logger.Named("proxy"), g.metrics)
	g.dyn.base = opts.Logger.GetLevel()
	g.access, g.tracer = opts.Logger.Named("access"), opts.Logger.Named("trace")
	g.fast = newServer(g)
	g.policies = newResources(opts.Logger.Named("policy"))
	if g.opts.PluginDir == "" && opts.DataDir != "" {
		g.opts.PluginDir = filepath.Join(opts.DataDir, "plugins")
	}
	g.registry = upstream.NewRegistry(opts.Logger.Named("upstream"))
	g.registry.OnChange(g.metrics.TargetHealth)
	if opts.NodeManager != "" {
		r, err := newRemote(opts)
		if err != nil {
			return nil, err
		}
		g.remote = r
	}
	if opts.ConfigURL != "" {
		p, err := newPublished(opts)
		if err != nil {
			return nil, err
		}
		g.published = p
	}

	if opts.DataDir == "" {
		g.store = &store.Memory{}
		return g, nil
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s, aside, err := store.OpenOrRecover(filepath.Join(opts.DataDir, "gateway.db"), opts.Logger.Named("store"))
	if err != nil {
		return nil, err
	}
	g.store, g.aside = s, aside
	return g, nil
}

// Load applies the first configuration available, in order: the file (in
// standalone mode the file is the gateway's source), else the newest valid
// configuration of the store. A file that exists but is invalid is an
// error, so that a mistake is seen at once instead of served around; a
// missing or unreadable file falls back to the store. With neither, the
// gateway starts unready and waits for the file.
//
// Under a node manager there is no file: the gateway serves the newest
// valid deployment of its store at once, whether or not the node manager
// answers, and Run follows the node manager from there.
func (g *Gateway) Load() error {
	if g.opts.ConfigPath != "" {
		cfg, sum, err := g.readFile()
		switch {
		case err == nil:
			if err := g.Apply(cfg, "file:"+g.opts.ConfigPath, true); err != nil {
				return err
			}
			g.fileSum = sum
			return nil
		case isFileAccess(err):
			g.logger.Warn("configuration file unavailable; trying the store", "path", g.opts.ConfigPath, "error", err)
		default:
			return err
		}
	}
	if g.published != nil {
		return g.loadPublished()
	}
	if g.loadStored() {
		return nil
	}
	if g.remote != nil {
		g.logger.Warn("no deployment stored yet; not ready until the node manager sends one", "node_manager", g.opts.NodeManager)
		return nil
	}
	g.logger.Warn("no configuration available yet; not ready until one is", "file", g.opts.ConfigPath)
	return nil
}

func isFileAccess(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// loadStored applies the newest stored configuration that is intact and
// valid, skipping damaged ones, with the number of the deployment it came
// in. Under a node manager only deployments count: a configuration that a
// file once gave the same data dir was never signed by the domain, and
// serving it would bypass the signature check.
func (g *Gateway) loadStored() bool {
	records, err := g.store.List()
	if err != nil {
		g.logger.Error("read configuration store", "error", err)
		return false
	}
	for _, r := range records {
		if (g.remote != nil || g.published != nil) && r.Deployment == 0 {
			g.logger.Warn("skipping stored configuration that is not a deployment", "seq", r.Seq, "origin", r.Origin)
			continue
		}
		if err := r.Verify(); err != nil {
			g.logger.Error("skipping damaged stored configuration", "seq", r.Seq, "error", err)
			continue
		}
		cfg, err := deploy.DecodeCanonical(r.Config)
		if err == nil {
			origin := fmt.Sprintf("store:%d (%s)", r.Seq, r.Origin)
			g.applyMu.Lock()
			err = g.settle(origin, g.apply(cfg, source{origin: origin, deployment: r.Deployment}))
			g.applyMu.Unlock()
		}
		if err != nil {
			g.logger.Error("skipping invalid stored configuration", "seq", r.Seq, "error", err)
			continue
		}
		return true
	}
	return false
}

// loadPublished starts a gateway whose source is object storage: on the
// newest deployment of its store, then on the published one if that is
// newer and acceptable. Neither is an error: the gateway starts unready
// and keeps reading the published one.
func (g *Gateway) loadPublished() error {
	stored := g.loadStored()
	g.publishedOK = g.pollPublished(context.Background())
	if !stored && g.proxy.Current() == nil {
		g.logger.Warn("no deployment stored or published yet; not ready until one is", "url", g.published.name)
	}
	return nil
}

// Apply validates cfg, compiles it and swaps it in; in-flight requests
// finish on the configuration they started with. An invalid configuration
// changes nothing. persist writes it to the store first.
func (g *Gateway) Apply(cfg *deploy.Config, origin string, persist bool) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	return g.settle(origin, g.apply(cfg, source{origin: origin, persist: persist}))
}

// source says where a configuration comes from and how to keep it.
type source struct {
	origin string
	// deployment is the number of the signed deployment it came in, 0 for
	// a file.
	deployment uint64
	persist    bool
	// checksum is set for a verified deployment: its configuration was
	// validated when its signature was checked, and this is its checksum.
	checksum string
}

// settle records the outcome of an attempt to apply (metrics, /status,
// logs) and returns err. Called with applyMu held.
func (g *Gateway) settle(origin string, err error) error {
	now := time.Now()
	g.metrics.Reload(err == nil, now)
	if err != nil {
		g.lastErr.Store(&applyError{Message: err.Error(), Origin: origin, At: now})
		if cur := g.proxy.Current(); cur != nil {
			g.logger.Error("configuration rejected; keeping the current one", "origin", origin, "current", cur.Checksum, "error", err)
		} else {
			g.logger.Error("configuration rejected", "origin", origin, "error", err)
		}
		return err
	}
	g.lastErr.Store(nil)
	return nil
}

// apply is Apply's work, with applyMu held.
func (g *Gateway) apply(cfg *deploy.Config, src source) error {
	if need, field := deploy.RequiredFeatureLevel(cfg); need > g.opts.FeatureLevel {
		return fmt.Errorf("%s needs configuration feature level %d; this gateway (version %s) has feature level %d",
			field, need, g.opts.Version, g.opts.FeatureLevel)
	}
	sum := src.checksum
	if sum == "" {
		if err := cfg.Validate(catalog.Checker{}); err != nil {
			return fmt.Errorf("validate configuration:\n%w", err)
		}
		var err error
		if sum, err = cfg.Checksum(); err != nil {
			return fmt.Errorf("checksum configuration: %w", err)
		}
	}
	// A new deployment of the same configuration is applied all the same,
	// so that its number is served, stored and reported.
	if cur := g.proxy.Current(); cur != nil && cur.Checksum == sum && g.deployment.Load() == src.deployment {
		return nil
	}
	ups, err := g.registry.Update(cfg.Upstreams)
	if err != nil {
		return fmt.Errorf("build upstreams: %w", err)
	}
	g.policies.begin()
	snap, err := proxy.Compile(cfg, sum, ups, g.metrics, &proxy.PolicyEnv{
		Logger:    g.logger,
		Group:     g.peers.channel(),
		Resources: g.policies,
		PluginDir: g.opts.PluginDir,
		Metrics:   g.metrics,
	})
	if err != nil {
		g.policies.abort()
		return fmt.Errorf("compile configuration: %w", err)
	}
	snap.AppliedAt = time.Now()
	snap.Origin = src.origin
	if src.persist {
		canonical, err := cfg.Canonical()
		if err != nil {
			return fmt.Errorf("encode configuration: %w", err)
		}
		// A store that cannot be written must not stop a valid
		// configuration from serving; it is reported and logged instead.
		rec := store.Record{Checksum: sum, AppliedAt: snap.AppliedAt, Origin: src.origin, Config: canonical, Deployment: src.deployment}
		if _, err := g.store.Save(rec); err != nil {
			g.logger.Error("could not persist configuration", "checksum", sum, "error", err)
		}
	}
	g.proxy.Swap(snap)
	g.policies.commit()
	g.deployment.Store(src.deployment)
	routes := 0
	for _, s := range cfg.Services {
		routes += len(s.Routes)
	}
	g.logger.Info("configuration applied", "checksum", sum, "origin", src.origin, "deployment", src.deployment,
		"services", len(cfg.Services), "routes", routes, "upstreams", len(cfg.Upstreams))
	return nil
}

// Ready implements status.Reporter.
func (g *Gateway) Ready() bool { return g.proxy.Current() != nil && !g.draining.Load() }

// Engines of the HTTP listener.
const (
	// EngineEvloop serves plain HTTP on epoll event loops (Linux).
	EngineEvloop = "evloop"
	// EngineFasthttp serves plain HTTP with fasthttp, one goroutine per
	// connection. The HTTPS listener always uses it.
	EngineFasthttp = "fasthttp"
)

// Run serves until ctx is done, then drains: it stops accepting, lets
// in-flight requests finish within the drain timeout, and returns.
func (g *Gateway) Run(ctx context.Context, reload <-chan struct{}) error {
	l, err := g.listen()
	if err != nil {
		return err
	}
	fast := g.fast
	statusSrv := newStatusServer(g)
	errs := make(chan error, 4)
	pprofSrv := newProfilingServer(g)
	defer pprofSrv.Close()
	serve := func() {
		go func() { errs <- statusSrv.Serve(l.status) }()
		if l.pprof != nil {
			go func() { errs <- pprofSrv.Serve(l.pprof) }()
			g.logger.Info("serving /debug/pprof on loopback", "address", l.pprof.Addr())
		}
		if l.engine != nil {
			go func() { errs <- l.engine.Serve() }()
		} else {
			go func() { errs <- fast.Serve(l.http) }()
		}
		if l.https != nil {
			go func() { errs <- fast.Serve(l.https) }()
		}
		g.logger.Info("gateway serving", "http", g.boundAddr("http"), "engine", g.opts.Engine,
			"https", g.boundAddr("https"), "status", g.boundAddr("status"))
	}
	takeover := g.opts.Takeover
	if takeover == nil {
		serve()
	}

	offerCtx, stopOffer := context.WithCancel(ctx)
	defer stopOffer()
	replaced := make(chan struct{})
	go g.offerHandover(offerCtx, l, replaced)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if g.opts.ConfigPath != "" {
		go g.watchFile(watchCtx, reload)
	}
	var remoteDone sync.WaitGroup
	if g.published != nil {
		remoteDone.Add(1)
		go func() { defer remoteDone.Done(); g.followPublished(watchCtx, g.publishedOK) }()
	}
	if g.remote != nil {
		remoteDone.Add(2)
		go func() { defer remoteDone.Done(); g.followNodeManager(watchCtx) }()
		go func() { defer remoteDone.Done(); g.reportLoop(watchCtx) }()
	}

	var runErr error
	if takeover != nil {
		// The old process serves until this one can: serving before a
		// configuration is applied would answer 503s it would not.
		if err := g.waitReady(ctx); err != nil {
			takeover.Close()
		} else {
			serve()
			if err := takeover.Ready(); err != nil {
				g.logger.Error("tell the replaced gateway to drain", "pid", takeover.PID, "error", err)
			} else {
				g.logger.Info("serving on the sockets taken over; the replaced gateway drains", "pid", takeover.PID)
				if f := g.opts.TakeoverReadyFile; f != "" {
					if err := readyfile.Write(f, readyfile.Addrs{"pid": strconv.Itoa(os.Getpid()), "replaced_pid": strconv.Itoa(takeover.PID)}); err != nil {
						g.logger.Error("write the takeover ready file", "path", f, "error", err)
					}
				}
			}
			go func() {
				select {
				case <-takeover.Gone():
					g.logger.Info("the replaced gateway has exited", "pid", takeover.PID)
					g.releaseGossip()
				case <-watchCtx.Done():
				}
			}()
		}
	}
	select {
	case <-ctx.Done():
	case <-replaced:
		g.logger.Info("replaced by a new process: stopping")
	case err := <-errs:
		runErr = fmt.Errorf("serve: %w", err)
	}
	stopOffer()
	// Peers see a graceful stop as a leave, not a failure.
	g.leaveGossip()
	// Nothing may apply a deployment once the store is closed.
	stopWatch()
	remoteDone.Wait()
	g.shutdown(l.engine, fast, statusSrv)
	return runErr
}

// listeners are the gateway's bound sockets.
type listeners struct {
	status, http, https net.Listener
	httpsRaw            net.Listener   // https before TLS
	pprof               net.Listener   // nil unless Profiling
	engine              *evloop.Engine // serves http instead of a listener
}

// listen binds every address before anything serves, so that a port in use
// is an error at start rather than a half-started gateway.
func (g *Gateway) listen() (*listeners, error) {
	var l listeners
	fail := func(err error) (*listeners, error) {
		for _, c := range []net.Listener{l.status, l.http, l.httpsRaw, l.pprof} {
			if c != nil {
				c.Close()
			}
		}
		if l.engine != nil {
			l.engine.Shutdown(context.Background())
		}
		return nil, err
	}
	var err error
	if l.status, err = g.listenTCP("status_listen", g.opts.StatusListen); err != nil {
		return fail(fmt.Errorf("listen status %s: %w", g.opts.StatusListen, err))
	}
	if g.opts.Profiling {
		if l.pprof, err = g.listenProfiling(); err != nil {
			return fail(err)
		}
	}
	var httpAddr string
	switch g.opts.Engine {
	case EngineEvloop, "":
		g.opts.Engine = EngineEvloop
		// One loop per CPU the runtime may use, and two more Ps than
		// loops: the loops never leave their threads, and with no spare P
		// the scheduler's monitor keeps taking Ps back from a loop
		// blocked in epoll_wait and waking threads to run the status
		// server, costing about a tenth of the CPU per request.
		loops := runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(loops + 2)
		l.engine, err = evloop.Listen(evloop.Config{
			Addr:       g.opts.Listen,
			Loops:      loops,
			Dispatcher: g.proxy.Dispatcher(),
			Logger:     g.logger.Named("evloop"),
			// Routes whose policies may block go to the goroutine engine.
			Handoff: func(c net.Conn) {
				if err := g.fast.ServeConn(c); err != nil {
					g.logger.Debug("handed-off connection ended", "error", err)
				}
			},
			ConnState: func(open bool) {
				if open {
					g.metrics.ConnOpened()
				} else {
					g.metrics.ConnClosed()
				}
			},
			Files: g.opts.Takeover.Files("listen", g.opts.Listen),
		})
		if err != nil {
			return fail(fmt.Errorf("listen http %s: %w", g.opts.Listen, err))
		}
		httpAddr = l.engine.Addr().String()
	case EngineFasthttp:
		if l.http, err = g.listenTCP("listen", g.opts.Listen); err != nil {
			return fail(fmt.Errorf("listen http %s: %w", g.opts.Listen, err))
		}
		httpAddr = l.http.Addr().String()
	default:
		return fail(fmt.Errorf("unknown engine %q (evloop or fasthttp)", g.opts.Engine))
	}
	if g.opts.TLSListen != "" {
		raw, err := g.listenTCP("tls_listen", g.opts.TLSListen)
		if err != nil {
			return fail(fmt.Errorf("listen https %s: %w", g.opts.TLSListen, err))
		}
		l.httpsRaw = raw
		l.https = tls.NewListener(raw, &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"http/1.1"},
			GetCertificate: g.certificate,
		})
	}
	g.listenersMu.Lock()
	g.listeners = []listenerInfo{{"http", httpAddr}, {"status", l.status.Addr().String()}}
	bound := map[string]string{"listen": httpAddr, "status_listen": l.status.Addr().String()}
	if l.https != nil {
		g.listeners = append(g.listeners, listenerInfo{"https", l.https.Addr().String()})
		bound["tls_listen"] = l.https.Addr().String()
	}
	if l.pprof != nil {
		g.listeners = append(g.listeners, listenerInfo{"pprof", l.pprof.Addr().String()})
		bound["pprof_listen"] = l.pprof.Addr().String()
	}
	g.listenersMu.Unlock()
	if g.opts.Listening != nil {
		if err := g.opts.Listening(bound); err != nil {
			return fail(err)
		}
	}
	return &l, nil
}

// boundAddr is the address the listener name ("http", "status",
// "https") is bound to, empty before Run bound it or when it is not
// served: what peers and logs must see when a port was 0.
func (g *Gateway) boundAddr(name string) string {
	g.listenersMu.Lock()
	defer g.listenersMu.Unlock()
	for _, l := range g.listeners {
		if l.Name == name {
			return l.Address
		}
	}
	return ""
}

func (g *Gateway) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	snap := g.proxy.Current()
	if snap == nil {
		return nil, errors.New("no configuration loaded")
	}
	return snap.Certs.Get(hello)
}
