package adminnode

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/backup"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/console"
	"github.com/gatehouse/gatehouse/adminnode/publish"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/objstore"
)

const (
	// DefaultListen is the admin node's port on every address.
	DefaultListen = ":8090"
	// maintainEvery is how often Run renews the server certificate when
	// due, removes instances offline for too long, and rolls up and prunes
	// the traffic store. The thresholds are hours or days, and a minute is
	// the traffic's coarse resolution, so a minute is precise enough and
	// costs nothing.
	maintainEvery = time.Minute
	// shutdownTimeout bounds how long shutdown waits for requests in
	// flight; API calls are short, so this is generous.
	shutdownTimeout = 10 * time.Second
)

// RunOptions configure the admin node process.
type RunOptions struct {
	DataDir string
	// Store is the connection string of the PostgreSQL database of a
	// domain made with InitOptions.Store; empty for admin.db in DataDir.
	Store string
	// Listen is the API address (DefaultListen when empty).
	Listen string
	// InsecureHTTP serves plain HTTP instead of HTTPS, for a node behind a
	// TLS-terminating proxy or a trial on one machine.
	InsecureHTTP bool
	// ServerNames are DNS names and IP addresses the server certificate
	// covers besides the host name, localhost, 127.0.0.1 and ::1.
	ServerNames []string
	// Listening, when set, is called once the API's port is bound and
	// before it serves, with the bound address ("listen") and the API's
	// URL ("url"): a port 0 in Listen is a real port there. An error
	// stops Run.
	Listening func(addrs map[string]string) error
	Logger    hclog.Logger

	// ConsoleIdle ends a web console session unused for that long
	// (console.DefaultIdleTimeout when zero).
	ConsoleIdle time.Duration

	// The rest configure the API (api.Config); zero values take its
	// defaults, except RemoveAfter.
	LoginTTL     time.Duration
	LostAfter    time.Duration
	OfflineAfter time.Duration
	// RemoveAfter is the heartbeat age at which an instance is removed;
	// 0 (or less) never removes one.
	RemoveAfter  time.Duration
	MaxBodyBytes int64
	PasswordCost int
	// DriftGrace is how long an instance may run another deployment than
	// its group's current one before it is flagged (api.DefaultDriftGrace).
	DriftGrace time.Duration
	// RolloutSoak is how long a rolling upgrade's batch must stay ready
	// before the next (api.DefaultRolloutSoak).
	RolloutSoak time.Duration
	// TrafficMaxRoutes and TrafficMaxConsumers bound the distinct routes
	// and consumers of a group's traffic (api.DefaultTrafficMaxRoutes,
	// api.DefaultTrafficMaxConsumers).
	TrafficMaxRoutes, TrafficMaxConsumers int
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// NodeCertTTL and ServerCertTTL are the lifetimes of node
	// certificates (api.DefaultNodeCertTTL) and of the admin node's HTTPS
	// certificate (ServerCertTTL); both renew in their last third.
	// CertWarnFraction is the fraction of its life left under which a
	// certificate is shown in the warning state
	// (api.DefaultCertWarnFraction).
	NodeCertTTL, ServerCertTTL time.Duration
	CertWarnFraction           float64

	// PublishTo is the object storage URL under which the lease holder
	// keeps each group's current deployment (groups/<group>/current), for
	// gateways that start while no admin node answers; empty publishes
	// nothing. PublishInterval is how often it checks the bucket
	// (DefaultPublishInterval); ObjectStorage, how it opens it.
	PublishTo       string
	PublishInterval time.Duration
	ObjectStorage   objstore.Options

	// BackupTo, when set, is where the admin node holding the background
	// lease stores a backup of the domain every BackupInterval, keeping
	// the BackupKeep newest (docs/backups.md).
	BackupTo       string
	BackupInterval time.Duration
	BackupKeep     int
	// BackupBucket is what opening BackupTo needs beyond the URL.
	BackupBucket objstore.Options
}

// DefaultPublishInterval is how often the publisher reads back the
// published deployments to mend any that differ from the store.
const DefaultPublishInterval = time.Minute

// Run serves the admin API of the domain in opts.DataDir until ctx is
// cancelled, then shuts down gracefully. It refuses to start on a data dir
// without a domain, or whose key files are not the domain's.
func Run(ctx context.Context, opts RunOptions) error {
	if opts.DataDir == "" {
		return errors.New("run admin node: no data dir")
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if err := checkCertOptions(opts); err != nil {
		return err
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger

	s, domain, err := openDomainStore(ctx, opts.DataDir, opts.Store)
	if err != nil {
		return err
	}
	defer s.Close()
	root, signingKey, err := loadKeys(opts.DataDir, domain)
	if err != nil {
		return err
	}
	settingsKey, err := loadSettingsKey(ctx, opts.DataDir, s, logger)
	if err != nil {
		return err
	}
	if err := syncBuiltInRoles(ctx, s, opts.Now(), logger); err != nil {
		return err
	}
	scheduler, err := backupScheduler(ctx, opts, s, domain.Name, signingKey)
	if err != nil {
		return err
	}
	removeAfter := opts.RemoveAfter
	if removeAfter <= 0 {
		removeAfter = -1 // api.Config's "disabled"
	}
	var cert *serverCert
	hostname, _ := os.Hostname() // a certificate without it still serves localhost
	server, err := api.New(api.Config{
		Store:         s,
		Domain:        domain,
		SigningKey:    signingKey,
		SettingsKey:   settingsKey,
		CA:            root,
		CAFingerprint: root.Fingerprint(),
		Logger:        logger.Named("api"),
		PasswordCost:  opts.PasswordCost,
		LoginTTL:      opts.LoginTTL,
		LostAfter:     opts.LostAfter,
		OfflineAfter:  opts.OfflineAfter,
		RemoveAfter:   removeAfter,
		MaxBodyBytes:  opts.MaxBodyBytes,
		DriftGrace:    opts.DriftGrace,
		RolloutSoak:   opts.RolloutSoak,
		Now:           opts.Now,
		NodeCertTTL:   opts.NodeCertTTL,
		Name:          hostname + "/" + opts.Listen,

		CertWarnFraction: opts.CertWarnFraction,
		ServerCertificate: func() *x509.Certificate {
			if cert == nil {
				return nil
			}
			return cert.cur.Load().Leaf
		},
		OnCAChange: func(a *ca.Authority) {
			if cert == nil {
				return
			}
			if renewed, err := cert.setAuthority(a, opts.Now()); err != nil {
				logger.Error("re-issue the server certificate from the new CA root; serving the current one", "error", err)
			} else if renewed {
				logger.Info("server certificate re-issued", "issuer", a.Fingerprint(), "not_after", cert.cur.Load().Leaf.NotAfter)
			}
		},

		TrafficMaxRoutes:    opts.TrafficMaxRoutes,
		TrafficMaxConsumers: opts.TrafficMaxConsumers,
		Backups:             scheduler.overview(),
	})
	if err != nil {
		return err
	}
	if !opts.InsecureHTTP {
		names, ips := serverNames(hostname, opts.Listen, opts.ServerNames)
		if cert, err = newServerCert(server.Authority(), names, ips, opts.ServerCertTTL, opts.Now()); err != nil {
			return err
		}
	}
	// Made before the first answer to a node manager, so that none
	// waits for a key it needs once every admin node is down.
	if _, err := server.PublishKeys(ctx); err != nil {
		return err
	}

	ui, err := console.New(console.Config{API: server.Handler(), Authorizers: server, Tokens: s,
		Logger: logger.Named("console"), IdleTimeout: opts.ConsoleIdle, Now: opts.Now})
	if err != nil {
		return err
	}

	var publisher *publish.Publisher
	if opts.PublishTo != "" {
		bucket, err := objstore.Open(ctx, opts.PublishTo, opts.ObjectStorage)
		if err != nil {
			return fmt.Errorf("--publish-to: %w", err)
		}
		publisher = publish.New(bucket, server, logger.Named("publish"))
		server.AddMetrics(publisher)
		logger.Info("publishing current deployments for gateways that start from object storage", "bucket", bucket.String())
	}

	l, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", opts.Listen, err)
	}
	srv := &http.Server{
		Handler:           rootHandler(server.Handler(), ui.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// What net/http logs is mostly clients misbehaving (failed TLS
		// handshakes from scanners and TCP health checks): not worth more
		// than debug.
		ErrorLog: logger.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	// Shutdown closes idle connections at once but waits up to 5 s for
	// connections that never sent a request; they are tracked to be
	// closed at once too.
	fresh := newConns()
	srv.ConnState = fresh.track
	errs := make(chan error, 1)
	scheme := "https"
	if opts.InsecureHTTP {
		scheme = "http"
	}
	if opts.Listening != nil {
		if err := opts.Listening(map[string]string{"listen": l.Addr().String(), "url": scheme + "://" + l.Addr().String()}); err != nil {
			l.Close()
			return err
		}
	}
	if opts.InsecureHTTP {
		logger.Warn("SERVING PLAIN HTTP (--insecure-http): passwords and tokens cross the network in clear text; " +
			"use this only behind a TLS-terminating proxy or on one machine for a trial")
		go func() { errs <- srv.Serve(l) }()
	} else {
		// Each handshake takes the roots trusted at that moment, which a
		// CA rotation changes.
		tlsConfig, _ := cert.config(nil)
		tlsConfig.GetConfigForClient = cert.config
		srv.TLSConfig = tlsConfig
		go func() { errs <- srv.ServeTLS(l, "", "") }()
	}
	logger.Info("admin node ready", "domain", domain.Name, "address", l.Addr().String(),
		"url", scheme+"://"+l.Addr().String(), "ca_fingerprint", server.Authority().Fingerprint())

	maintainCtx, stopMaintain := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Other admin nodes on the store wake this one's blocking queries;
	// the domain's background work runs where the lease is held.
	name := hostname + "/" + l.Addr().String()
	wg.Go(func() { server.Follow(maintainCtx, name) })
	lease := coordinate(maintainCtx, s, name)
	wg.Go(func() { maintain(maintainCtx, logger, server, lease, removeAfter > 0) })
	wg.Go(func() { maintainCerts(maintainCtx, logger, opts.Now, cert, server) })
	wg.Go(func() { server.RunRollouts(maintainCtx, lease) })
	if publisher != nil {
		wg.Go(func() { publisher.Run(maintainCtx, lease, cmp.Or(opts.PublishInterval, DefaultPublishInterval)) })
	}
	if scheduler != nil {
		wg.Go(func() { scheduler.Run(maintainCtx, lease) })
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-errs:
		runErr = fmt.Errorf("serve: %w", err)
	}
	shut, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	fresh.closeAll()
	if err := srv.Shutdown(shut); err != nil {
		logger.Warn("requests still in flight at shutdown were cut off", "error", err)
	}
	// The store closes (deferred) only once nothing uses it any more.
	stopMaintain()
	wg.Wait()
	if err := server.Flush(shut); err != nil {
		logger.Error("write instance states at shutdown", "error", err)
	}
	return runErr
}

// minCertTTL is the shortest certificate lifetime Run accepts: renewal
// checks run a twelfth of a lifetime apart, and a shorter one would have
// them spin.
const minCertTTL = 10 * time.Second

// checkCertOptions refuses lifetimes and a warning fraction that make no
// sense, naming the flag; zero values take the defaults.
func checkCertOptions(opts RunOptions) error {
	for _, f := range []struct {
		flag string
		ttl  time.Duration
	}{{"--node-cert-ttl", opts.NodeCertTTL}, {"--server-cert-ttl", opts.ServerCertTTL}} {
		if f.ttl != 0 && f.ttl < minCertTTL {
			return fmt.Errorf("run admin node: %s %s: want at least %s", f.flag, f.ttl, minCertTTL)
		}
	}
	if w := opts.CertWarnFraction; w < 0 || w >= 1 {
		return fmt.Errorf("run admin node: --cert-warn-fraction %v: want a fraction between 0 and 1", w)
	}
	return nil
}

// openStore opens the data dir's store and reads its domain. It checks for
// the file first: opening a missing store would create an empty one.
func openStore(ctx context.Context, dir string) (store.Store, store.Domain, error) {
	noDomain := fmt.Errorf("no domain in %s: run gatehouse admin init first", dir)
	path := filepath.Join(dir, StoreFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, store.Domain{}, noDomain
	}
	s, err := store.Open(path)
	if err != nil {
		return nil, store.Domain{}, err
	}
	d, err := s.GetDomain(ctx)
	if err != nil {
		s.Close()
		if errors.Is(err, store.ErrNotFound) {
			return nil, store.Domain{}, noDomain
		}
		return nil, store.Domain{}, fmt.Errorf("read domain: %w", err)
	}
	return s, d, nil
}

// loadKeys reads the CA and the signing key and checks that they are the
// domain's: a key file copied from another domain would have the node
// issue certificates nobody trusts and sign deployments every gateway
// refuses, so it is refused at start instead.
func loadKeys(dir string, d store.Domain) (*ca.CA, ed25519.PrivateKey, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("load domain keys: %w", err)
		}
		return b, nil
	}
	certPEM, err := read(CACertFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := read(CAKeyFile)
	if err != nil {
		return nil, nil, err
	}
	signingPEM, err := read(SigningKeyFile)
	if err != nil {
		return nil, nil, err
	}
	root, err := ca.Load(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("load domain CA from %s: %w", dir, err)
	}
	stored, err := ca.Fingerprint([]byte(d.CACertPEM))
	if err != nil {
		return nil, nil, fmt.Errorf("domain %s: stored CA certificate: %w", d.Name, err)
	}
	if root.Fingerprint() != stored || root.Domain() != d.Name {
		return nil, nil, fmt.Errorf("%s is not the CA of domain %s (it is %s, the domain's is %s): refusing to start",
			filepath.Join(dir, CACertFile), d.Name, root.Fingerprint(), stored)
	}
	key, err := decodeSigningKey(signingPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("load signing key %s: %w", filepath.Join(dir, SigningKeyFile), err)
	}
	if pub := key.Public().(ed25519.PublicKey); !bytes.Equal(pub, d.SigningPublicKey) {
		return nil, nil, fmt.Errorf("%s is not the signing key of domain %s (it is %s, the domain's is %s): refusing to start",
			filepath.Join(dir, SigningKeyFile), d.Name, deploy.KeyFingerprint(pub), deploy.KeyFingerprint(d.SigningPublicKey))
	}
	return root, key, nil
}

// coordinate competes for the domain's background lease under this admin
// node's name (its host's and listen address); a store that cannot share
// one is always held.
func coordinate(ctx context.Context, s store.Store, name string) store.Lease {
	c, ok := s.(store.Coordinator)
	if !ok {
		return alwaysHeld{}
	}
	return c.Lease(ctx, name)
}

type alwaysHeld struct{}

func (alwaysHeld) Held() bool { return true }

// maintainCerts follows the domain CA's roots in the store, for a
// rotation made through another admin node, and renews the server
// certificate (nil over plain HTTP) when due.
func maintainCerts(ctx context.Context, logger hclog.Logger, now func() time.Time, cert *serverCert, server *api.Server) {
	every := maintainEvery
	if cert != nil {
		every = cert.checkEvery()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	rec := certRecorder{server: server, logger: logger, now: now}
	rec.record(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A change calls the server's OnCAChange, which re-issues the
		// server certificate if its root changed.
		if _, err := server.ReloadCA(ctx); err != nil && ctx.Err() == nil {
			logger.Error("read the domain CA roots", "error", err)
		}
		if cert == nil {
			continue
		}
		renewed, err := cert.renew(now())
		switch {
		case err != nil:
			logger.Error("renew server certificate; serving the current one", "error", err)
		case renewed:
			logger.Info("server certificate renewed", "not_after", cert.cur.Load().Leaf.NotAfter)
		}
		rec.record(ctx)
	}
}

// certRecorder records the admin node's HTTPS certificate in the store
// for the other admin nodes to list: when it is new (start, renewal, a CA
// change) and every api.AdminCertRefresh, and again after a failed write.
type certRecorder struct {
	server *api.Server
	logger hclog.Logger
	now    func() time.Time
	last   *x509.Certificate
	at     time.Time
}

func (r *certRecorder) record(ctx context.Context) {
	cur := r.server.ServerCertificate()
	if cur == nil || cur == r.last && r.now().Sub(r.at) < api.AdminCertRefresh {
		return
	}
	cert, err := r.server.RecordServerCert(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Error("record the server certificate for the other admin nodes; trying again", "error", err)
		}
		return
	}
	r.last, r.at = cert, r.now()
}

// maintain writes the heartbeats left in memory; while lease is held it
// also removes instances offline for too long (when remove is set) and
// maintains the traffic store: every maintainEvery until ctx ends.
func maintain(ctx context.Context, logger hclog.Logger, server *api.Server, lease store.Lease, remove bool) {
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Heartbeats flush themselves; this writes what a quiet domain's
		// last beats left.
		if err := server.Flush(ctx); err != nil && ctx.Err() == nil {
			logger.Error("write instance states", "error", err)
		}
		background(ctx, logger, server, lease, remove)
	}
}

// background does the domain's background work, where lease is held: the
// traffic store's roll-up and pruning, and the removal of instances
// offline for too long (when remove is set).
func background(ctx context.Context, logger hclog.Logger, server *api.Server, lease store.Lease, remove bool) {
	if !lease.Held() {
		return
	}
	if m, err := server.MaintainTraffic(ctx); err != nil && ctx.Err() == nil {
		logger.Error("roll up and prune the traffic store", "error", err)
	} else if m.Pruned > 0 || m.Forgotten > 0 {
		logger.Debug("traffic store maintained", "rolled_up", m.RolledUp, "pruned", m.Pruned, "labels_forgotten", m.Forgotten)
	}
	if remove {
		removed, err := server.RemoveOffline(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Error("remove offline instances", "error", err)
		}
		for _, name := range removed {
			logger.Info("removed instance offline for too long", "instance", name)
		}
	}
}

// conns tracks the connections that have not sent a request yet.
type conns struct {
	mu  sync.Mutex
	new map[net.Conn]struct{}
}

func newConns() *conns { return &conns{new: map[net.Conn]struct{}{}} }

func (c *conns) track(conn net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if state == http.StateNew {
		c.new[conn] = struct{}{}
	} else {
		delete(c.new, conn)
	}
}

func (c *conns) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.new {
		conn.Close()
	}
}

// scheduledBackups are the admin node's scheduled backups.
type scheduledBackups struct{ *backup.Scheduler }

// backupScheduler checks the backup options and opens the location, so
// that a wrong one stops the admin node at start rather than at the first
// backup; nil without --backup-to.
func backupScheduler(ctx context.Context, opts RunOptions, s store.Store, domain string, key ed25519.PrivateKey) (*scheduledBackups, error) {
	if opts.BackupTo == "" {
		return nil, nil
	}
	bucket, err := objstore.Open(ctx, opts.BackupTo, opts.BackupBucket)
	if err != nil {
		return nil, fmt.Errorf("--backup-to: %w", err)
	}
	sched := backup.Schedule{Bucket: bucket, Interval: opts.BackupInterval, Keep: opts.BackupKeep}
	if err := sched.Check(); err != nil {
		return nil, err
	}
	return &scheduledBackups{backup.NewScheduler(sched, s, domain, key, opts.Logger.Named("backup"), opts.Now)}, nil
}

// overview reports the backups for the API; nil without a scheduler.
func (b *scheduledBackups) overview() func() apitypes.OverviewBackups {
	if b == nil {
		return nil
	}
	return func() apitypes.OverviewBackups {
		st := b.Status()
		return apitypes.OverviewBackups{
			Location: st.Location, Interval: st.Interval.String(), Keep: st.Keep, Running: st.Running,
			LastSuccess: st.LastSuccess, LastName: st.LastName, LastSize: st.LastSize,
			LastFailure: st.LastFailure, LastError: st.LastError,
			Successes: st.Successes, Failures: st.Failures, Kept: st.Kept,
		}
	}
}
