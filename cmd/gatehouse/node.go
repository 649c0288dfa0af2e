package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/cli"
	"github.com/gatehouse/gatehouse/internal/readyfile"
	"github.com/gatehouse/gatehouse/nodemanager"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

func nodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Join a host to a domain and run its node manager",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(nodeJoinCommand(), nodeRunCommand(), nodeUnitCommand())
	return cmd
}

func nodeUnitCommand() *cobra.Command {
	var binary, dataDir, driver string
	cmd := &cobra.Command{
		Use:   "unit [-- NODE-RUN-FLAGS...]",
		Short: "Print the node manager's systemd unit",
		Long: `Print the systemd unit of the node manager (Type=notify with a watchdog;
KillMode=process so that its gateways keep serving when it stops), to
install as /etc/systemd/system/gatehouse-node.service. Arguments after --
are more flags of "gatehouse node run" for its ExecStart= (--listen,
--plugin-dir, ...), one word each.`,
		Example: `  gatehouse node unit --data-dir /var/lib/gatehouse/node > /etc/systemd/system/gatehouse-node.service
  gatehouse node unit --driver systemd -- --plugin-dir /usr/local/lib/gatehouse/plugins > /etc/systemd/system/gatehouse-node.service
  systemctl daemon-reload && systemctl enable --now gatehouse-node`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return fmt.Errorf("node unit: unexpected argument %q: flags of node run go after --", args[0])
			}
			if binary == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				binary = exe
			}
			unit, err := nodemanager.Unit(binary, dataDir, driver, args...)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), unit)
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "gatehouse binary the unit runs (default: this one)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/gatehouse/node", "the node manager's data directory")
	cmd.Flags().StringVar(&driver, "driver", nodemanager.DriverExec, "how gateways are run: exec or systemd")
	return cmd
}

func nodeJoinCommand() *cobra.Command {
	var (
		opts   nodemanager.JoinOptions
		caFile string
	)
	cmd := &cobra.Command{
		Use:   "join",
		Short: "Join this host to a domain with a join token",
		Long: `Join this host to the domain of the admin node at --addr (or the first that
answers of several, separated by commas), with a join token made by
"gatehouse token create --host NAME". The admin node is trusted only
if its CA has the fingerprint --ca-fingerprint (printed by "gatehouse admin
init" and by "token create --host"), or is the certificate in --ca-cert. The
node's key is made here and never leaves the host; the certificate, key, CA
and identity are kept in --data-dir for "gatehouse node run".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("read --ca-cert: %w", err)
				}
				opts.CACertPEM = pem
			}
			id, err := nodemanager.Join(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Joined domain %s as host %s. Now run:\n  gatehouse node run --data-dir %s\n", id.Domain, id.Host, opts.DataDir)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.Admin, "addr", "", "admin node URL, https://host:8090, or several admin nodes' URLs separated by commas")
	fs.StringVar(&opts.Token, "token", "", "join token (gatehouse token create --host NAME)")
	fs.StringVar(&opts.DataDir, "data-dir", "", "the node manager's data directory")
	fs.StringVar(&opts.CAFingerprint, "ca-fingerprint", "", "fingerprint of the domain CA to trust, SHA256:…")
	fs.StringVar(&caFile, "ca-cert", "", "the domain CA certificate to trust, instead of --ca-fingerprint")
	fs.SetNormalizeFunc(cli.NormalizeFlag)
	for _, f := range []string{"addr", "token", "data-dir"} {
		cmd.MarkFlagRequired(f)
	}
	cmd.MarkFlagsMutuallyExclusive("ca-fingerprint", "ca-cert")
	return cmd
}

func nodeRunCommand() *cobra.Command {
	var (
		opts      nodemanager.RunOptions
		logs      logFlags
		readyFile string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node manager: supervise this host's gateways and relay their configuration",
		Long: `Run the node manager of the host joined in --data-dir: follow the admin node's
desired instances for this host, start and supervise their gateway processes,
relay each group's deployment to them, and report their state. Gateways keep
serving when the node manager stops, and are adopted again when it starts.

The admin nodes are those of --addr (comma-separated), else the address the
host joined through. The node manager sticks to one and moves to the next
when it cannot connect or answers 5xx; its blocking queries and traffic
batches go on there where they stopped (docs/node-manager.md).

The local API (--listen, loopback only) answers the gateways with their
instance secrets; its restart call wants the operator token that the first
run writes to DATA_DIR/` + localapi.TokenFile + ` (0600), and it refuses any request
with an Origin header or a Host that is not loopback (docs/node-manager.md).

With --fallback-config, a group that has no deployment stored on this host
takes the one the admin nodes publish to object storage while none of them
answers, checked against the domain's key, domain and group
(docs/object-storage.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = logs.logger("node")
			opts.Version = version
			opts.Listening = readyfile.Hook(readyFile)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return nodemanager.Run(ctx, opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.DataDir, "data-dir", "", "the node manager's data directory (made by gatehouse node join)")
	fs.StringVar(&opts.Admin, "addr", "", "admin nodes' URLs separated by commas, tried in order (default: the address joined through, in node.json)")
	fs.StringVar(&opts.Listen, "listen", nodemanager.DefaultListen, "local API address (loopback only)")
	fs.StringVar(&opts.Driver, "driver", nodemanager.DriverExec, "how gateways are run: exec (child processes) or systemd (units)")
	fs.StringVar(&opts.GatewayBinary, "gateway-binary", "", "gatehouse binary the gateways run (default: this one)")
	fs.StringVar(&opts.PluginDir, "plugin-dir", "", "directory of external policy binaries, for every gateway of the host (default <data-dir>/plugins)")
	fs.StringVar(&opts.Advertise, "advertise", "", "IP address this host's gateways are reached at by their peers (default: the address the admin node sees)")
	fs.DurationVar(&opts.Heartbeat, "heartbeat", nodemanager.DefaultHeartbeat, "how often instance state is reported")
	fs.DurationVar(&opts.Wait, "wait", nodemanager.DefaultWait, "how long blocking queries wait on the admin node")
	fs.DurationVar(&opts.DrainTimeout, "drain-timeout", 0, "how long a stopped gateway may drain before SIGKILL (default 30s)")
	fs.DurationVar(&opts.ReadyTimeout, "gateway-ready-timeout", 0, "how long a gateway's new process may take to be ready when it replaces the running one (restart, new flags or release); past it, the new process is stopped and the old one serves on (default 60s)")
	fs.DurationVar(&opts.TrafficInterval, "traffic-interval", nodemanager.DefaultTrafficInterval, "how often the gateways' traffic counts are read and spooled for the admin node")
	fs.Int64Var(&opts.TrafficSpoolMaxBytes, "traffic-spool-max-bytes", nodemanager.DefaultTrafficSpoolMaxBytes, "bound of the traffic batches spooled while the admin node is unreachable, in bytes (past it the oldest are dropped)")
	fs.StringVar(&readyFile, "ready-file", "", readyFileUsage+` (keys "listen", "url"), once the stored instances are started or adopted`)
	fs.DurationVar(&opts.TrafficSpoolMaxAge, "traffic-spool-max-age", nodemanager.DefaultTrafficSpoolMaxAge, "age past which spooled traffic batches are dropped")
	fs.StringVar(&opts.FallbackConfig, "fallback-config", "", "object storage the admin nodes publish deployments to (their --publish-to, s3://bucket/prefix?… or file:///dir): a group without a stored deployment takes its published one while no admin node answers")
	fs.StringVar(&opts.ObjectStorage.CredentialsFile, "s3-credentials-file", "", "AWS shared credentials file for an s3:// --fallback-config (default: the AWS_* environment variables, then ~/.aws/credentials)")
	logs.register(fs)
	fs.SetNormalizeFunc(cli.NormalizeFlag)
	cmd.MarkFlagRequired("data-dir")
	return cmd
}
