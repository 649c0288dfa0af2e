package nodemanager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/nodemanager/state"
	"github.com/gatehouse/gatehouse/nodemanager/supervisor"
	"github.com/gatehouse/gatehouse/objstore"
)

// Defaults of RunOptions.
const (
	DefaultListen    = localapi.DefaultAddress
	DefaultHeartbeat = 5 * time.Second
	DefaultWait      = 30 * time.Second
)

// Drivers of the supervisor.
const (
	DriverExec    = "exec"
	DriverSystemd = "systemd"
)

// RunOptions configure a node manager process.
type RunOptions struct {
	DataDir string
	// Admin lists the admin nodes to talk to, comma-separated, in the
	// order they are tried (client.Config.Addresses); empty, the address
	// the node joined through (node.json) is used.
	Admin string
	// Listen is the local API's address; it must be a loopback address.
	Listen string
	// Driver is DriverExec (the default) or DriverSystemd.
	Driver string
	// GatewayBinary is the gatehouse binary the gateways run (this
	// executable by default).
	GatewayBinary string
	// Heartbeat is how often the instances' state is reported (5 s).
	Heartbeat time.Duration
	// Wait is how long blocking queries wait on the admin node (30 s).
	Wait time.Duration
	// DrainTimeout is how long a stopped gateway may drain (30 s).
	DrainTimeout time.Duration
	// ReadyTimeout is how long a gateway's new process may take to be
	// ready when it replaces a running one (60 s): a restart or flags
	// change without downtime (docs/node-manager.md).
	ReadyTimeout time.Duration
	// Advertise is the IP address the host's gateways are reached at by
	// their peers (gossip); empty, the admin node uses the address the
	// node manager's heartbeats come from.
	Advertise string
	// TrafficInterval is how often the gateways' traffic counts are read
	// and spooled as a batch for the admin node (10 s).
	TrafficInterval time.Duration
	// TrafficSpoolMaxBytes and TrafficSpoolMaxAge bound the batches
	// spooled while the admin node is unreachable (64 MiB, 24 h): past
	// either, the oldest are dropped and counted.
	TrafficSpoolMaxBytes int64
	TrafficSpoolMaxAge   time.Duration
	// PluginDir holds the binaries of external policies, given to every
	// gateway (default <DataDir>/plugins).
	PluginDir string
	// StopGateways stops the gateways when Run returns, instead of leaving
	// them serving: for gatehouse dev, where everything goes together.
	StopGateways bool
	// Version is reported in heartbeats, for gatehouse status.
	Version string
	// Listening, when set, is called once the local API serves and the
	// stored instances are started or adopted, with the bound address
	// ("listen") and the API's URL ("url"): a port 0 in Listen is a real
	// port there. An error stops Run.
	Listening func(addrs map[string]string) error
	Logger    hclog.Logger
	// FallbackConfig is the object storage URL the admin nodes publish the
	// groups' deployments under (their --publish-to): a group with no
	// deployment stored takes its published one while no admin node
	// answers. Empty, there is no fallback. ObjectStorage says how to open
	// it.
	FallbackConfig string
	ObjectStorage  objstore.Options
}

// Run runs the node manager until ctx is cancelled. Its gateways outlive
// it: on the way out it stops supervising them but leaves them serving,
// and the next Run adopts them.
func Run(ctx context.Context, opts RunOptions) error {
	// First, before anything is started that would inherit them.
	sd := takeSystemdEnv()
	if opts.DataDir == "" {
		return errors.New("run node manager: no data dir")
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Wait == 0 {
		opts.Wait = DefaultWait
	}
	if opts.Driver == "" {
		opts.Driver = DriverExec
	}
	if opts.TrafficInterval == 0 {
		opts.TrafficInterval = DefaultTrafficInterval
	}
	if opts.TrafficSpoolMaxBytes == 0 {
		opts.TrafficSpoolMaxBytes = DefaultTrafficSpoolMaxBytes
	}
	if opts.TrafficSpoolMaxAge == 0 {
		opts.TrafficSpoolMaxAge = DefaultTrafficSpoolMaxAge
	}
	if opts.TrafficInterval < 0 || opts.TrafficSpoolMaxBytes < 0 || opts.TrafficSpoolMaxAge < 0 {
		return errors.New("run node manager: the traffic interval and spool bounds must be positive")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.PluginDir == "" {
		opts.PluginDir = filepath.Join(opts.DataDir, "plugins")
	}
	if !filepath.IsAbs(opts.PluginDir) {
		abs, err := filepath.Abs(opts.PluginDir)
		if err != nil {
			return fmt.Errorf("plugin dir: %w", err)
		}
		opts.PluginDir = abs
	}
	log := opts.Logger
	if err := checkLoopback(opts.Listen); err != nil {
		return err
	}
	if opts.GatewayBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the gatehouse binary: %w", err)
		}
		opts.GatewayBinary = exe
	}
	id, err := LoadIdentity(opts.DataDir)
	if err != nil {
		return err
	}
	cs, err := loadCerts(opts.DataDir)
	if err != nil {
		return err
	}
	tr, err := loadTrust(opts.DataDir)
	if err != nil {
		return err
	}
	if opts.Admin == "" {
		opts.Admin = id.Admin
	}
	admin, err := client.New(client.Config{Address: opts.Admin, RootCAs: tr.Pool, ClientCertificate: cs.get,
		// Blocking queries hold a request for the wait and its jitter.
		Timeout: opts.Wait + opts.Wait/8 + 30*time.Second,
		OnFailover: func(from, to string, cause error) {
			log.Warn("admin node failing: moving to the next", "from", from, "to", to, "error", cause)
		}})
	if err != nil {
		return err
	}
	token, created, err := loadLocalToken(opts.DataDir)
	if err != nil {
		return err
	}
	if created {
		log.Info("made the local API's operator token", "file", filepath.Join(opts.DataDir, localapi.TokenFile))
	}
	st, err := state.Open(filepath.Join(opts.DataDir, StateFile))
	if err != nil {
		return err
	}
	defer st.Close()

	driver, gatewayDataDir, err := newDriver(opts, log)
	if err != nil {
		return err
	}
	supCtx, stopSup := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSup()
	sup, err := supervisor.New(supCtx, supervisor.Options{Driver: driver, Logger: log.Named("supervisor"), DrainTimeout: opts.DrainTimeout,
		ZeroDowntime: true, ReadyTimeout: opts.ReadyTimeout})
	if err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	// Close stops supervising without stopping the gateways.
	defer sup.Close()

	l, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("local API: listen %s: %w", opts.Listen, err)
	}
	a := &agent{
		id: id, log: log, admin: admin, certs: cs, trust: tr, renewKick: make(chan struct{}, 1), state: st, sup: sup, binary: opts.GatewayBinary,
		gatewayDataDir: gatewayDataDir, local: "http://" + l.Addr().String(), localToken: token, wait: opts.Wait, now: time.Now, started: time.Now(), advertise: opts.Advertise,
		pluginDir: opts.PluginDir, probe: &gatewayProbe{binary: opts.GatewayBinary},
		version: opts.Version,
		changed: newBroadcast(), kick: make(chan struct{}, 1), settingsKick: make(chan struct{}, 1), reports: map[string]report{}, watching: map[string]context.CancelFunc{},
		stopping: make(chan struct{}),
	}
	domainKey, err := deploy.ParsePublicKey(id.SigningKey)
	if err != nil {
		l.Close()
		return fmt.Errorf("the domain's signing key in the identity: %w", err)
	}
	a.notes = newSpecNotes()
	a.releases = newReleases(filepath.Join(opts.DataDir, "releases"), domainKey, admin, log.Named("releases"))
	if opts.FallbackConfig != "" {
		if a.fallback, err = objstore.Open(ctx, opts.FallbackConfig, opts.ObjectStorage); err != nil {
			l.Close()
			return fmt.Errorf("fallback configuration: %w", err)
		}
	}
	a.localIndex.Store(uint64(time.Now().UnixNano()))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = metrics.NewNode(reg, a.metricInstances)
	a.traffic, err = newCollector(collectorOptions{Node: id.Host, Logger: log.Named("traffic"), State: st, Admin: admin, Metrics: a.metrics,
		Limits:  state.SpoolLimits{MaxBytes: opts.TrafficSpoolMaxBytes, MaxAge: opts.TrafficSpoolMaxAge},
		Targets: a.trafficTargets, Interval: opts.TrafficInterval})
	if err != nil {
		l.Close()
		return err
	}
	srv := &http.Server{Handler: a.localHandler(reg), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()

	// What the node had before it could ask anyone: gateways start (or are
	// adopted) and are fed from the store, admin node or not.
	if err := a.apply(ctx); err != nil {
		log.Error("apply stored desired instances", "error", err)
	}
	log.Info("node manager ready", "host", id.Host, "domain", id.Domain, "admin", opts.Admin, "local_api", a.local, "driver", opts.Driver)
	if a.fallback != nil {
		log.Info("groups without a stored deployment fall back to object storage while no admin node answers", "bucket", a.fallback.String())
	}
	if opts.Listening != nil {
		if err := opts.Listening(map[string]string{"listen": l.Addr().String(), "url": a.local}); err != nil {
			srv.Close()
			return err
		}
	}
	sd.notify("READY=1")

	var wg sync.WaitGroup
	wg.Go(func() { a.watchInstances(ctx) })
	wg.Go(func() { a.heartbeats(ctx, opts.Heartbeat) })
	wg.Go(func() { a.renewals(ctx) })
	wg.Go(func() { sd.pingWatchdog(ctx) })
	wg.Go(func() { a.traffic.send(ctx) })
	wg.Go(func() { a.deliverSettings(ctx) })
	// Collection stops after the local API, so that the last counts of
	// gateways stopped on the way out (StopGateways) are spooled.
	collectCtx, stopCollect := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() { a.traffic.run(collectCtx, opts.TrafficInterval) })

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down; the gateways keep serving")
	case err := <-serveErr:
		runErr = fmt.Errorf("local API: %w", err)
	}
	sd.notify("STOPPING=1")
	if opts.StopGateways {
		stop, cancel := context.WithTimeout(context.Background(), opts.DrainTimeout+10*time.Second)
		if err := sup.Reconcile(stop, nil); err != nil {
			log.Error("stop gateways", "error", err)
		}
		cancel()
	}
	// Shutdown waits for the requests in flight, and a blocking query
	// holds on for up to its wait: they are answered now.
	close(a.stopping)
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shut)
	a.mu.Lock()
	for _, cancel := range a.watching {
		cancel()
	}
	a.mu.Unlock()
	stopCollect()
	wg.Wait()
	return runErr
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("local API address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("local API address %q: must be a loopback address: the API hands out deployments and restarts gateways", addr)
	}
	return nil
}

// newDriver makes the supervisor's driver and says where each gateway
// keeps its data: under the data dir with the exec driver, in the unit's
// StateDirectory= with systemd's.
func newDriver(opts RunOptions, log hclog.Logger) (supervisor.Driver, func(string) string, error) {
	switch opts.Driver {
	case "", DriverExec:
		d, err := supervisor.NewExec(supervisor.ExecOptions{DataDir: opts.DataDir, Logger: log.Named("exec")})
		return d, func(name string) string { return filepath.Join(opts.DataDir, "instances", name, "data") }, err
	case DriverSystemd:
		d, err := supervisor.NewSystemd(supervisor.SystemdOptions{Binary: opts.GatewayBinary, DrainTimeout: opts.DrainTimeout, Logger: log.Named("systemd")})
		return d, supervisor.SystemdDataDir, err
	}
	return nil, nil, fmt.Errorf("driver %q: want %s or %s", opts.Driver, DriverExec, DriverSystemd)
}
