package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/evloop"
	"github.com/gatehouse/gatehouse/gateway/proxy"
	"github.com/gatehouse/gatehouse/gateway/store"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/metrics"
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
	// ConfigPath is the declarative file of standalone mode.
	ConfigPath string
	// WatchInterval is how often the file is checked for changes.
	WatchInterval time.Duration
	// DrainTimeout bounds how long shutdown waits for in-flight requests.
	DrainTimeout time.Duration
	// Engine serves the HTTP listener: EngineEvloop (the default) or
	// EngineFasthttp.
	Engine string
	// Profiling serves Go's /debug/pprof on the status port.
	Profiling bool
	Logger    hclog.Logger
}

// Gateway is one gateway process.
type Gateway struct {
	opts     Options
	logger   hclog.Logger
	store    store.Store
	aside    string // where a damaged store was moved at start, if it was
	registry *upstream.Registry
	proxy    *proxy.Proxy
	metrics  *metrics.Gateway
	gatherer prometheus.Gatherer

	applyMu  sync.Mutex
	lastErr  atomic.Pointer[applyError]
	draining atomic.Bool
	started  time.Time

	listenersMu sync.Mutex
	listeners   []listenerInfo

	fileMu  sync.Mutex
	fileSum string
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := &Gateway{
		opts:     opts,
		logger:   opts.Logger,
		metrics:  metrics.NewGateway(reg, opts.Group),
		gatherer: reg,
		started:  time.Now(),
	}
	g.proxy = proxy.New(opts.Logger.Named("proxy"), g.metrics)
	g.registry = upstream.NewRegistry(opts.Logger.Named("upstream"))
	g.registry.OnChange(g.metrics.TargetHealth)

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
	if g.loadStored() {
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
// valid, skipping damaged ones.
func (g *Gateway) loadStored() bool {
	records, err := g.store.List()
	if err != nil {
		g.logger.Error("read configuration store", "error", err)
		return false
	}
	for _, r := range records {
		if err := r.Verify(); err != nil {
			g.logger.Error("skipping damaged stored configuration", "seq", r.Seq, "error", err)
			continue
		}
		cfg, err := deploy.DecodeCanonical(r.Config)
		if err == nil {
			err = g.Apply(cfg, fmt.Sprintf("store:%d (%s)", r.Seq, r.Origin), false)
		}
		if err != nil {
			g.logger.Error("skipping invalid stored configuration", "seq", r.Seq, "error", err)
			continue
		}
		return true
	}
	return false
}

// Apply validates cfg, compiles it and swaps it in; in-flight requests
// finish on the configuration they started with. An invalid configuration
// changes nothing. persist writes it to the store first.
func (g *Gateway) Apply(cfg *deploy.Config, origin string, persist bool) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	err := g.apply(cfg, origin, persist)
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

func (g *Gateway) apply(cfg *deploy.Config, origin string, persist bool) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("validate configuration:\n%w", err)
	}
	sum, err := cfg.Checksum()
	if err != nil {
		return fmt.Errorf("checksum configuration: %w", err)
	}
	if cur := g.proxy.Current(); cur != nil && cur.Checksum == sum {
		return nil
	}
	ups, err := g.registry.Update(cfg.Upstreams)
	if err != nil {
		return fmt.Errorf("build upstreams: %w", err)
	}
	snap, err := proxy.Compile(cfg, sum, ups, g.metrics)
	if err != nil {
		return fmt.Errorf("compile configuration: %w", err)
	}
	snap.AppliedAt = time.Now()
	snap.Origin = origin
	if persist {
		canonical, err := cfg.Canonical()
		if err != nil {
			return fmt.Errorf("encode configuration: %w", err)
		}
		// A store that cannot be written must not stop a valid
		// configuration from serving; it is reported and logged instead.
		if _, err := g.store.Save(store.Record{Checksum: sum, AppliedAt: snap.AppliedAt, Origin: origin, Config: canonical}); err != nil {
			g.logger.Error("could not persist configuration", "checksum", sum, "error", err)
		}
	}
	g.proxy.Swap(snap)
	routes := 0
	for _, s := range cfg.Services {
		routes += len(s.Routes)
	}
	g.logger.Info("configuration applied", "checksum", sum, "origin", origin,
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
	fast := newServer(g)
	statusSrv := newStatusServer(g)
	errs := make(chan error, 3)
	go func() { errs <- statusSrv.Serve(l.status) }()
	if l.engine != nil {
		go func() { errs <- l.engine.Serve() }()
	} else {
		go func() { errs <- fast.Serve(l.http) }()
	}
	if l.https != nil {
		go func() { errs <- fast.Serve(l.https) }()
	}
	g.logger.Info("gateway serving", "http", g.listeners[0].Address, "engine", g.opts.Engine,
		"https", g.opts.TLSListen, "status", l.status.Addr())

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if g.opts.ConfigPath != "" {
		go g.watchFile(watchCtx, reload)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errs:
		runErr = fmt.Errorf("serve: %w", err)
	}
	g.shutdown(l.engine, fast, statusSrv)
	return runErr
}

// listeners are the gateway's bound sockets.
type listeners struct {
	status, http, https net.Listener
	engine              *evloop.Engine // serves http instead of a listener
}

// listen binds every address before anything serves, so that a port in use
// is an error at start rather than a half-started gateway.
func (g *Gateway) listen() (*listeners, error) {
	var l listeners
	fail := func(err error) (*listeners, error) {
		for _, c := range []net.Listener{l.status, l.http, l.https} {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	var err error
	if l.status, err = net.Listen("tcp", g.opts.StatusListen); err != nil {
		return fail(fmt.Errorf("listen status %s: %w", g.opts.StatusListen, err))
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
			ConnState: func(open bool) {
				if open {
					g.metrics.ConnOpened()
				} else {
					g.metrics.ConnClosed()
				}
			},
		})
		if err != nil {
			return fail(fmt.Errorf("listen http %s: %w", g.opts.Listen, err))
		}
		httpAddr = l.engine.Addr().String()
	case EngineFasthttp:
		if l.http, err = net.Listen("tcp", g.opts.Listen); err != nil {
			return fail(fmt.Errorf("listen http %s: %w", g.opts.Listen, err))
		}
		httpAddr = l.http.Addr().String()
	default:
		return fail(fmt.Errorf("unknown engine %q (evloop or fasthttp)", g.opts.Engine))
	}
	if g.opts.TLSListen != "" {
		raw, err := net.Listen("tcp", g.opts.TLSListen)
		if err != nil {
			if l.engine != nil {
				l.engine.Shutdown(context.Background())
			}
			return fail(fmt.Errorf("listen https %s: %w", g.opts.TLSListen, err))
		}
		l.https = tls.NewListener(raw, &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"http/1.1"},
			GetCertificate: g.certificate,
		})
	}
	g.listenersMu.Lock()
	g.listeners = []listenerInfo{{"http", httpAddr}, {"status", l.status.Addr().String()}}
	if l.https != nil {
		g.listeners = append(g.listeners, listenerInfo{"https", l.https.Addr().String()})
	}
	g.listenersMu.Unlock()
	return &l, nil
}

func (g *Gateway) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	snap := g.proxy.Current()
	if snap == nil {
		return nil, errors.New("no configuration loaded")
	}
	return snap.Certs.Get(hello)
}
