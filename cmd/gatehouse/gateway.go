package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/gateway/handover"
	"github.com/gatehouse/gatehouse/internal/readyfile"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/pubseal"
)

// gatewayCommand runs a gateway of this binary's version that
// understands configurations up to featureLevel.
func gatewayCommand(featureLevel int) *cobra.Command {
	var (
		opts      gateway.Options
		logs      logFlags
		domainKey string
		readyFile string
		takeover  bool
	)
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run a gateway (the data plane)",
		Long: `Run a gateway. In standalone mode it serves the declarative file named by
--config and reloads it when it changes and on SIGHUP; every applied
configuration is kept in <data-dir>/gateway.db, so that the gateway can start
and serve its last good configuration when the file is unavailable.

Under a node manager (--node-manager, instead of --config) it follows its
group's signed deployments, applying only those that verify with
--domain-key, and reports what it runs; the instance's secret is read from
` + localapi.EnvInstanceSecret + `. It starts on the newest deployment of its
store, so it serves while the node manager is down.

With --config-url (instead of --config or --node-manager) it serves the
signed deployment an admin node publishes for its group in object storage
(admin run --publish-to), reading it at start and every --config-poll: a
gateway that can start while every admin node is down. Only a deployment that
opens with the publish keys of --config-key, verifies with --domain-key, is of
the group and is not older than the one it serves is applied
(docs/object-storage.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := publishedFlags(cmd, &opts, domainKey); err != nil {
				return err
			}
			if err := nodeManagerFlags(cmd, &opts, domainKey); err != nil {
				return err
			}
			if err := profilingFlags(cmd, opts); err != nil {
				return err
			}
			opts.Logger = logs.logger("gateway")
			opts.Version, opts.FeatureLevel = version, featureLevel
			opts.Listening = readyfile.Hook(readyFile)
			if opts.TakeoverReadyFile != "" && !takeover {
				return errors.New("--takeover-ready-file is for --takeover")
			}
			if takeover {
				if opts.DataDir == "" {
					return errors.New("--takeover needs --data-dir: the gateway to take over is the one of the same data dir")
				}
				t, err := handover.Take(handover.Name(opts.DataDir), 10*time.Second)
				switch {
				case errors.Is(err, handover.ErrNoOffer):
					opts.Logger.Info("no gateway of this data dir runs: nothing to take over", "data_dir", opts.DataDir)
				case err != nil:
					return fmt.Errorf("--takeover: %w", err)
				default:
					opts.Logger.Info("took over the listening sockets of the running gateway", "pid", t.PID)
					opts.Takeover = t
					defer t.Close()
				}
			}
			g, err := gateway.New(opts)
			if err != nil {
				return err
			}
			if err := g.Load(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			reload := make(chan struct{}, 1)
			go func() {
				for range hup {
					select {
					case reload <- struct{}{}:
					default:
					}
				}
			}()
			return g.Run(ctx, reload)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.ConfigPath, "config", "", "declarative configuration file (YAML or JSON)")
	fs.StringVar(&opts.NodeManager, "node-manager", "", "base URL of the node manager's local API (e.g. "+localapi.DefaultURL+"); the gateway's source instead of --config")
	fs.StringVar(&opts.ConfigURL, "config-url", "", "object storage URL of the group's published deployment (s3://bucket/prefix/groups/<group>/current?…, or file:///…); the gateway's source instead of --config")
	fs.DurationVar(&opts.ConfigPoll, "config-poll", gateway.DefaultConfigPoll, "how often the published deployment of --config-url is read again")
	fs.StringVar(&opts.ObjectStorage.CredentialsFile, "s3-credentials-file", "", "AWS shared credentials file for an s3:// --config-url (default: the AWS_* environment variables, then ~/.aws/credentials)")
	fs.String("config-key", "", "file of the domain's publish keys, which open the published deployment of --config-url (gatehouse publish-key export --to FILE; mode 0600)")
	fs.StringVar(&domainKey, "domain-key", "", `the domain's deployment key ("ed25519:…"), required with --node-manager and --config-url`)
	fs.StringVar(&opts.GossipListen, "gossip-listen", "", "gossip address with the group's peers under a node manager (IP:port or :port; empty: no gossip)")
	fs.StringVar(&opts.GossipAdvertise, "gossip-advertise", "", "gossip address the peers reach this gateway at, when not the bound one")
	fs.StringVar(&opts.DataDir, "data-dir", "", "directory of the local configuration store (gateway.db); empty keeps it in memory")
	fs.StringVar(&opts.PluginDir, "plugin-dir", "", "directory of external policy binaries (default <data-dir>/plugins)")
	fs.StringVar(&opts.Listen, "listen", ":8080", "HTTP traffic address")
	fs.StringVar(&opts.TLSListen, "tls-listen", ":8443", `HTTPS traffic address ("" to disable)`)
	fs.StringVar(&opts.StatusListen, "status-listen", ":8085", "status address (/healthz, /readyz, /status, /metrics)")
	fs.StringVar(&opts.Group, "group", "default", "group this instance belongs to")
	fs.StringVar(&opts.Instance, "instance", host, "instance name")
	fs.DurationVar(&opts.DrainTimeout, "drain-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	fs.DurationVar(&opts.WatchInterval, "watch-interval", time.Second, "how often the configuration file is checked for changes")
	fs.StringVar(&opts.Engine, "engine", gateway.EngineEvloop, "engine of the HTTP listener: evloop (epoll event loops) or fasthttp")
	fs.BoolVar(&opts.Profiling, "pprof", false, "serve Go's /debug/pprof on --pprof-listen")
	fs.StringVar(&opts.ProfilingListen, "pprof-listen", gateway.DefaultProfilingListen, "loopback address of /debug/pprof with --pprof (never the status port)")
	fs.StringVar(&opts.TakeoverReadyFile, "takeover-ready-file", "", `with --takeover: file written ({"pid":…,"replaced_pid":…}) once the running gateway was told to drain, this one serving`)
	fs.BoolVar(&takeover, "takeover", false, "take over the listening sockets of the gateway running on the same --data-dir, start serving once a configuration is applied, then have it drain and exit (a restart without downtime; the node manager uses it)")
	fs.StringVar(&readyFile, "ready-file", "", readyFileUsage+` (keys "listen", "tls_listen", "status_listen", "pprof_listen")`)
	logs.register(fs)
	return cmd
}

// profilingFlags checks --pprof-listen here, to name the flag in the
// error; the gateway checks the address again when it binds it.
func profilingFlags(cmd *cobra.Command, opts gateway.Options) error {
	if !opts.Profiling {
		if cmd.Flags().Changed("pprof-listen") {
			return errors.New("--pprof-listen is for --pprof")
		}
		return nil
	}
	if err := gateway.CheckProfilingListen(opts.ProfilingListen); err != nil {
		return fmt.Errorf("--pprof-listen: %w", err)
	}
	return nil
}

// nodeManagerFlags checks the flags of the node manager mode and fills
// opts from them and from the environment.
func nodeManagerFlags(cmd *cobra.Command, opts *gateway.Options, domainKey string) error {
	fs := cmd.Flags()
	if opts.NodeManager == "" {
		if domainKey != "" && opts.ConfigURL == "" {
			return errors.New("--domain-key is for --node-manager and --config-url")
		}
		return nil
	}
	if opts.ConfigPath != "" {
		return errors.New("--config and --node-manager are mutually exclusive: a gateway's source is a file or its node manager")
	}
	// The defaults (group "default", the host name) suit a standalone
	// gateway; under a node manager a wrong name would fetch another
	// instance's deployment or be refused, so both must be given.
	for _, name := range []string{"group", "instance"} {
		if !fs.Changed(name) {
			return fmt.Errorf("--%s is required with --node-manager", name)
		}
	}
	if domainKey == "" {
		return errors.New("--domain-key is required with --node-manager")
	}
	key, err := deploy.ParsePublicKey(domainKey)
	if err != nil {
		return fmt.Errorf("--domain-key: %w", err)
	}
	opts.DomainKey = key
	opts.InstanceSecret = os.Getenv(localapi.EnvInstanceSecret)
	if opts.InstanceSecret == "" {
		return fmt.Errorf("%s is not set: the node manager gives each gateway it starts its secret there", localapi.EnvInstanceSecret)
	}
	return nil
}

// publishedFlags checks the flags of a gateway whose source is a
// published deployment. Its group is --group or, by default, the one the
// URL names (…/groups/<group>/current); the two must agree.
func publishedFlags(cmd *cobra.Command, opts *gateway.Options, domainKey string) error {
	fs := cmd.Flags()
	if opts.ConfigURL == "" {
		for _, name := range []string{"config-poll", "s3-credentials-file", "config-key"} {
			if fs.Changed(name) {
				return fmt.Errorf("--%s is for --config-url", name)
			}
		}
		return nil
	}
	if opts.ConfigPath != "" || opts.NodeManager != "" {
		return errors.New("--config-url, --config and --node-manager are mutually exclusive: a gateway has one source")
	}
	if domainKey == "" {
		return errors.New("--domain-key is required with --config-url: a published deployment is applied only if it is signed by the domain")
	}
	key, err := deploy.ParsePublicKey(domainKey)
	if err != nil {
		return fmt.Errorf("--domain-key: %w", err)
	}
	opts.DomainKey = key
	configKey, _ := fs.GetString("config-key")
	if configKey == "" {
		return errors.New("--config-key is required with --config-url: published deployments are sealed with the domain's publish key (a domain admin exports it: gatehouse publish-key export --to FILE)")
	}
	if opts.PublishDomain, opts.PublishKeys, err = pubseal.ReadKeyFile(configKey); err != nil {
		return fmt.Errorf("--config-key: %w", err)
	}
	if opts.ConfigPoll <= 0 {
		return fmt.Errorf("--config-poll %s: must be positive", opts.ConfigPoll)
	}
	named := groupOfURL(opts.ConfigURL)
	switch {
	case fs.Changed("group") && named != "" && named != opts.Group:
		return fmt.Errorf("--group %s, but --config-url is the deployment of group %s", opts.Group, named)
	case !fs.Changed("group") && named == "":
		return errors.New("--group is required with a --config-url that does not end in groups/<group>/current")
	case !fs.Changed("group"):
		opts.Group = named
	}
	return nil
}

// groupOfURL returns the group of a URL ending in groups/<group>/current,
// else "".
func groupOfURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.TrimSuffix(u.Path, "/"), "/")
	if n := len(parts); n >= 3 && parts[n-3] == "groups" && parts[n-1] == "current" {
		return parts[n-2]
	}
	return ""
}
