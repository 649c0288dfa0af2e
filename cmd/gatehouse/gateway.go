package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/gateway"
)

func gatewayCommand() *cobra.Command {
	var (
		opts gateway.Options
		logs logFlags
	)
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run a gateway (the data plane)",
		Long: `Run a gateway. In standalone mode it serves the declarative file named by
--config and reloads it when it changes and on SIGHUP; every applied
configuration is kept in <data-dir>/gateway.db, so that the gateway can start
and serve its last good configuration when the file is unavailable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = logs.logger("gateway")
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
	fs.StringVar(&opts.DataDir, "data-dir", "", "directory of the local configuration store (gateway.db); empty keeps it in memory")
	fs.StringVar(&opts.Listen, "listen", ":8080", "HTTP traffic address")
	fs.StringVar(&opts.TLSListen, "tls-listen", ":8443", `HTTPS traffic address ("" to disable)`)
	fs.StringVar(&opts.StatusListen, "status-listen", ":8085", "status address (/healthz, /readyz, /status, /metrics)")
	fs.StringVar(&opts.Group, "group", "default", "group this instance belongs to")
	fs.StringVar(&opts.Instance, "instance", host, "instance name")
	fs.DurationVar(&opts.DrainTimeout, "drain-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	fs.DurationVar(&opts.WatchInterval, "watch-interval", time.Second, "how often the configuration file is checked for changes")
	fs.StringVar(&opts.Engine, "engine", gateway.EngineEvloop, "engine of the HTTP listener: evloop (epoll event loops) or fasthttp")
	fs.BoolVar(&opts.Profiling, "pprof", false, "serve Go's /debug/pprof on the status port")
	logs.register(fs)
	return cmd
}
