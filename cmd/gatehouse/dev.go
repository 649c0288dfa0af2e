package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/devdomain"
	"github.com/gatehouse/gatehouse/internal/readyfile"
)

func devCommand() *cobra.Command {
	var (
		opts                          devdomain.Options
		logs                          logFlags
		readyFile                     string
		gatewayListen, status, gossip []string
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
everything.

Every address flag takes port 0 to let the domain choose a free port (e.g.
--admin-listen 127.0.0.1:0): the ports chosen are printed, and written to
--ready-file. One --gateway-listen and one --gateway-status-listen (and,
if given, one --gateway-gossip-listen) per gateway instance; their number is
the number of instances (demo-1, demo-2, ...). A reused --dir keeps the instances' addresses of the run that made it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(gatewayListen) != len(status) || len(gatewayListen) == 0 {
				return fmt.Errorf("--gateway-listen and --gateway-status-listen: one of each per gateway instance, got %d and %d",
					len(gatewayListen), len(status))
			}
			if len(gossip) != 0 && len(gossip) != len(gatewayListen) {
				return fmt.Errorf("--gateway-gossip-listen: one per gateway instance (%d), got %d", len(gatewayListen), len(gossip))
			}
			for i := range gatewayListen {
				g := devdomain.Gateway{Name: fmt.Sprintf("demo-%d", i+1), Listen: gatewayListen[i], StatusListen: status[i]}
				if len(gossip) != 0 {
					g.GossipListen = gossip[i]
				}
				opts.Gateways = append(opts.Gateways, g)
			}
			opts.Logger = logs.logger("dev")
			opts.Out = cmd.OutOrStdout()
			// dev.env puts this gatehouse on PATH when it is installed as
			// gatehouse, not a test binary or a renamed copy.
			if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "gatehouse" {
				opts.CLIDir = filepath.Dir(exe)
			}
			opts.Listening = readyfile.Hook(readyFile)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return devdomain.Run(ctx, opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.Dir, "dir", "", "directory of the domain (default: a temporary one)")
	fs.StringVar(&opts.AdminAddr, "admin-listen", "127.0.0.1:8090", "the admin node's address")
	fs.StringVar(&opts.NodeAddr, "node-listen", "127.0.0.1:8091", "the node manager's local API address (loopback)")
	fs.StringVar(&opts.Upstream, "upstream-listen", "127.0.0.1:9001", "the demo upstream's address")
	fs.StringSliceVar(&gatewayListen, "gateway-listen", []string{"127.0.0.1:8080", "127.0.0.1:8081"}, "traffic address of each gateway instance (comma-separated or repeated)")
	fs.StringSliceVar(&status, "gateway-status-listen", []string{"127.0.0.1:8085", "127.0.0.1:8086"}, "status address of each gateway instance (comma-separated or repeated)")
	fs.StringSliceVar(&gossip, "gateway-gossip-listen", nil, "gossip address of each gateway instance (default: 127.0.0.1:7946, 127.0.0.1:7947, ...)")
	fs.StringVar(&readyFile, "ready-file", "", readyFileUsage+` (keys "admin_listen", "admin_url", "node_listen", "upstream_listen", "demo-N_listen", "demo-N_status_listen", "demo-N_gossip_listen"), once the whole domain runs`)
	logs.register(fs)
	fs.Lookup("log-level").DefValue = "warn"
	fs.Set("log-level", "warn")
	return cmd
}
