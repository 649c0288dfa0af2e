package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode"
	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/console"
	"github.com/gatehouse/gatehouse/cli"
	"github.com/gatehouse/gatehouse/internal/readyfile"
)

func adminCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Create and run the admin node, which holds the domain's configuration",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(adminInitCommand(), adminRunCommand(), adminUnitCommand(), adminKeysCommand(), cli.AdminBackupCommand(), adminRestoreCommand())
	return cmd
}

func adminUnitCommand() *cobra.Command {
	var binary, dataDir, user, listen string
	cmd := &cobra.Command{
		Use:   "unit",
		Short: "Print the admin node's systemd unit",
		Long: `Print a hardened systemd unit of the admin node, to install as
/etc/systemd/system/gatehouse-admin.service. It runs "gatehouse admin run" as
--user, which must own --data-dir, with the rest of the file system read-only
or hidden, no capability and a system-call filter; the user and the domain
(gatehouse admin init, as that user) are made beforehand.`,
		Example: `  useradd --system --home-dir /var/lib/gatehouse --shell /usr/sbin/nologin gatehouse
  sudo -u gatehouse gatehouse admin init --data-dir /var/lib/gatehouse/admin --domain acme
  gatehouse admin unit > /etc/systemd/system/gatehouse-admin.service
  systemctl daemon-reload && systemctl enable --now gatehouse-admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if binary == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				binary = exe
			}
			unit, err := adminnode.Unit(binary, dataDir, user, listen)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), unit)
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "gatehouse binary the unit runs (default: this one)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/gatehouse/admin", "the admin node's data directory")
	cmd.Flags().StringVar(&user, "user", adminnode.DefaultUnitUser, "account the admin node runs as (not root)")
	cmd.Flags().StringVar(&listen, "listen", adminnode.DefaultListen, "API address")
	return cmd
}

func adminInitCommand() *cobra.Command {
	var (
		opts         adminnode.InitOptions
		passwordFile string
		storeFlags   storeFlags
		join         string
		passFile     string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a domain: its CA, signing key, store and admin user",
		Long: `Create a domain in --data-dir: the domain CA (ca.crt, ca.key), the key
deployments are signed with (signing.key), the key environment secrets are
sealed with (settings.key) and the store (admin.db) with the built-in roles
and the user admin, bound to domain-admin. A data dir that already holds a
domain, or the remains of an interrupted init, is refused: init never
overwrites anything.

The admin password is the first line of --password-file; without it, one is
generated and printed once.

With a PostgreSQL connection string (--store-file, GATEHOUSE_STORE or
--store), the domain is created in that database instead of admin.db; the
keys stay in --data-dir, never in the database. With --join, no domain is
created: the keys of the key bundle (gatehouse admin keys export on an admin
node of the domain, opened with --passphrase-file) are written to --data-dir
once checked to be those of the domain the database holds, making this
machine another admin node of it.`,
		Example: `  gatehouse admin init --data-dir /var/lib/gatehouse/admin --domain acme
  GATEHOUSE_STORE=postgres://gatehouse@db1/gatehouse gatehouse admin init --data-dir /var/lib/gatehouse/admin --domain acme
  gatehouse admin init --join acme.ghk --passphrase-file pass.txt --store-file dsn.txt --data-dir /var/lib/gatehouse/admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, err := storeFlags.dsn()
			if err != nil {
				return err
			}
			if join != "" {
				return adminJoin(cmd, opts.DataDir, dsn, join, passFile)
			}
			if opts.Domain == "" {
				return errors.New(`required flag "domain" not set (or --join to add an admin node to an existing domain)`)
			}
			opts.Store = dsn
			if passwordFile != "" {
				pw, err := firstLine(passwordFile)
				if err != nil {
					return err
				}
				opts.Password = pw
			}
			res, err := adminnode.Init(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created domain %s in %s.\n\n", res.Domain, res.DataDir)
			if res.Password != "" {
				fmt.Fprintf(out, "Generated password for %s (shown once): %s\n\n", res.User, res.Password)
			}
			fmt.Fprintf(out, "Node managers pin this CA: %s\n", res.CAFingerprint)
			fmt.Fprintf(out, "Deployments are signed by: %s\n\n", res.SigningKeyFingerprint)
			fmt.Fprintf(out, "Next steps:\n  gatehouse admin run --data-dir %s\n  gatehouse login --addr https://127.0.0.1:8090 --ca-cert %s\n",
				res.DataDir, filepath.Join(res.DataDir, adminnode.CACertFile))
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.DataDir, "data-dir", "", "directory to create the domain in (created 0700 if missing)")
	fs.StringVar(&opts.Domain, "domain", "", "domain name: 1 to 63 lowercase letters, digits and '-'")
	fs.StringVar(&passwordFile, "password-file", "", "file whose first line is the admin password (default: generate one)")
	fs.StringVar(&join, "join", "", "key bundle of an existing domain in PostgreSQL: make this an admin node of it instead of creating a domain")
	fs.StringVar(&passFile, "passphrase-file", "", "file whose first line is the passphrase of the --join key bundle")
	storeFlags.register(fs)
	cmd.MarkFlagRequired("data-dir")
	return cmd
}

// firstLine reads the password from a file, so that it stays out of the
// shell history and the process list.
func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("read password file %s: %w", path, err)
		}
		return "", fmt.Errorf("password file %s is empty", path)
	}
	line := strings.TrimSuffix(sc.Text(), "\r")
	if line == "" {
		return "", fmt.Errorf("password file %s: first line is empty", path)
	}
	return line, nil
}

func adminRunCommand() *cobra.Command {
	var (
		opts       adminnode.RunOptions
		logs       logFlags
		readyFile  string
		storeFlags storeFlags
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the admin node: the domain's HTTPS API",
		Long: `Serve the admin API of the domain in --data-dir over HTTPS, with a server
certificate the node issues itself from the domain CA and renews while it
runs. SIGINT and SIGTERM shut it down gracefully.

A domain made with a PostgreSQL connection string is served from that
database: give it again (--store-file, GATEHOUSE_STORE or --store) every
time; it is never written to the data dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, err := storeFlags.dsn()
			if err != nil {
				return err
			}
			opts.Store = dsn
			opts.Logger = logs.logger("admin")
			opts.Listening = readyfile.Hook(readyFile)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return adminnode.Run(ctx, opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.DataDir, "data-dir", "", "directory of the domain (made by gatehouse admin init)")
	fs.StringVar(&opts.Listen, "listen", adminnode.DefaultListen, "API address (IP:port; an empty host listens on all addresses)")
	fs.BoolVar(&opts.InsecureHTTP, "insecure-http", false, "serve plain HTTP instead of HTTPS (only behind a TLS-terminating proxy or for a trial)")
	fs.StringArrayVar(&opts.ServerNames, "server-name", nil, "DNS name or IP address the server certificate covers besides the host name, localhost and loopback (repeatable)")
	fs.DurationVar(&opts.LoginTTL, "login-ttl", 12*time.Hour, "lifetime of login tokens")
	fs.DurationVar(&opts.ConsoleIdle, "console-idle-timeout", console.DefaultIdleTimeout, "a web console session without a request for this long ends")
	fs.DurationVar(&opts.LostAfter, "lost-after", 30*time.Second, "an instance without a heartbeat for this long has lost connection")
	fs.DurationVar(&opts.OfflineAfter, "offline-after", 2*time.Hour, "an instance without a heartbeat for this long is offline")
	fs.DurationVar(&opts.RemoveAfter, "remove-after", 7*24*time.Hour, "an instance without a heartbeat for this long is removed (0 never removes)")
	fs.Int64Var(&opts.MaxBodyBytes, "max-body", 8<<20, "largest request body in bytes")
	fs.DurationVar(&opts.DriftGrace, "drift-grace", api.DefaultDriftGrace, "an instance running another deployment than its group's for this long is flagged as drifting")
	fs.DurationVar(&opts.RolloutSoak, "rollout-soak", api.DefaultRolloutSoak, "how long the instances of a rolling upgrade's batch must stay ready on their new process before the next batch (docs/upgrades.md)")
	fs.IntVar(&opts.TrafficMaxRoutes, "traffic-max-routes", api.DefaultTrafficMaxRoutes, `distinct service/route pairs kept apart in a group's traffic; beyond, routes fold into "(other)"`)
	fs.StringVar(&readyFile, "ready-file", "", readyFileUsage+` (keys "listen", "url")`)
	fs.DurationVar(&opts.NodeCertTTL, "node-cert-ttl", api.DefaultNodeCertTTL, "lifetime of the node certificates this admin node issues; node managers renew them in their last third")
	fs.DurationVar(&opts.ServerCertTTL, "server-cert-ttl", adminnode.ServerCertTTL, "lifetime of this admin node's HTTPS certificate, renewed in its last third")
	fs.Float64Var(&opts.CertWarnFraction, "cert-warn-fraction", api.DefaultCertWarnFraction, "a certificate with less than this fraction of its life left is shown in the warning state (status, console, gatehouse_certificate_warning)")
	fs.IntVar(&opts.TrafficMaxConsumers, "traffic-max-consumers", api.DefaultTrafficMaxConsumers, `distinct consumers kept apart in a group's traffic; beyond, consumers fold into "(other)"`)
	fs.StringVar(&opts.PublishTo, "publish-to", "", "object storage (s3://bucket/prefix?… or file:///dir) where each group's current signed deployment is kept for gateways that start without an admin node (docs/object-storage.md)")
	fs.DurationVar(&opts.PublishInterval, "publish-interval", adminnode.DefaultPublishInterval, "how often the published deployments are read back and mended")
	fs.StringVar(&opts.ObjectStorage.CredentialsFile, "s3-credentials-file", "", "AWS shared credentials file for s3:// object storage (default: the AWS_* environment variables, then ~/.aws/credentials)")
	fs.StringVar(&opts.BackupTo, "backup-to", "", "take a backup of the domain every --backup-interval, on the admin node holding the background lease, into file:///dir or s3://bucket/prefix (docs/backups.md)")
	fs.DurationVar(&opts.BackupInterval, "backup-interval", 24*time.Hour, "time between two scheduled backups (the first is taken at start)")
	fs.IntVar(&opts.BackupKeep, "backup-keep", 7, "scheduled backups the location keeps: older ones of the domain are deleted")
	fs.StringVar(&opts.BackupBucket.CredentialsFile, "backup-s3-credentials-file", "", "file with the S3 credentials of --backup-to (default: the environment)")
	logs.register(fs)
	storeFlags.register(fs)
	cmd.MarkFlagRequired("data-dir")
	return cmd
}
