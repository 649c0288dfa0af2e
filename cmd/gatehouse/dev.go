package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/devdomain"
)

func devCommand() *cobra.Command {
	var (
		opts devdomain.Options
		logs logFlags
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole domain on this machine: admin node, node manager, two gateways, a demo upstream",
		Long: `Run a development domain on this machine: an admin node (HTTPS on
127.0.0.1:8090), a node manager (127.0.0.1:8091) joined to it, a demo
upstream (127.0.0.1:9001) and a group "demo" of two gateway instances
(127.0.0.1:8080 and 127.0.0.1:8081) with a sample configuration deployed.
Prints the URLs and the admin password, and writes DIR/dev.env for the CLI:
"source DIR/dev.env" sets GATEHOUSE_ADDR, GATEHOUSE_TOKEN and GATEHOUSE_CACERT
and puts this gatehouse first on PATH.
Without --dir everything lives in a temporary directory removed at the end;
with --dir, a second run reuses the domain made by the first. Ctrl-C stops
everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = logs.logger("dev")
			opts.Out = cmd.OutOrStdout()
			// dev.env puts this gatehouse on PATH when it is installed as
			// gatehouse, not a test binary or a renamed copy.
			if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "gatehouse" {
				opts.CLIDir = filepath.Dir(exe)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return devdomain.Run(ctx, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "directory of the domain (default: a temporary one)")
	logs.register(cmd.Flags())
	cmd.Flags().Lookup("log-level").DefValue = "warn"
	cmd.Flags().Set("log-level", "warn")
	return cmd
}
