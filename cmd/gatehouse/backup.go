package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode"
	"github.com/gatehouse/gatehouse/adminnode/backup"
	"github.com/gatehouse/gatehouse/backupfile"
)

func adminRestoreCommand() *cobra.Command {
	var (
		opts       adminnode.RestoreOptions
		storeFlags storeFlags
		bundle     string
		passFile   string
	)
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a domain from a backup into an empty store",
		Long: `Restore the backup --from (the URL of one backup object, as gatehouse admin
backup printed it) into --data-dir: into a new admin.db there, or, with a
PostgreSQL connection string (--store-file, GATEHOUSE_STORE or --store), into
that database, which must be empty. This is also how a domain moves from
admin.db to PostgreSQL (docs/backups.md).

The domain's keys are never in a backup. Either --data-dir already holds
them (ca.crt, ca.key, signing.key and settings.key copied from the domain's
data dir, and no store), or --keys gives a key bundle (gatehouse admin keys
export) opened with --passphrase-file, written to an empty --data-dir.

The backup must be of that domain and signed by its signing key, and must
not have been edited; a store that holds anything is refused. A refused
restore changes nothing.`,
		Example: `  gatehouse admin restore --from file:///backups/acme/acme-20261202T171500.000Z.ghbackup --data-dir /var/lib/gatehouse/admin
  gatehouse admin restore --from file:///backups/acme/acme-20261202T171500.000Z.ghbackup --data-dir /var/lib/gatehouse/admin \
      --keys acme.ghk --passphrase-file pass.txt --store-file dsn.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, err := storeFlags.dsn()
			if err != nil {
				return err
			}
			opts.Store = dsn
			if bundle != "" {
				if opts.Passphrase, err = readPassphrase(passFile); err != nil {
					return err
				}
				if opts.Bundle, err = os.ReadFile(bundle); err != nil {
					return fmt.Errorf("read key bundle: %w", err)
				}
			}
			res, err := adminnode.Restore(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			where := adminnode.StoreFile + " in " + res.DataDir
			if res.Postgres {
				where = "the PostgreSQL database"
			}
			fmt.Fprintf(out, "Restored domain %s, as backed up at %s, into %s: %s.\n", res.Summary.Domain,
				res.Summary.TakenAt.Format("2006-01-02 15:04:05 MST"), where, backup.CountsText(res.Summary.Counts))
			fmt.Fprintf(out, "Checksum %s and signature (key %s) verified.\n\n", res.Summary.Checksum, res.Summary.SigningKey)
			fmt.Fprintf(out, "Next steps:\n  gatehouse admin run --data-dir %s\n", res.DataDir)
			fmt.Fprintln(out, "  deployments continue above the numbers the gateways report running (docs/backups.md)")
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.From, "from", "", "URL of the backup: file:///dir/NAME"+backupfile.Suffix+" or s3://bucket/prefix/NAME"+backupfile.Suffix)
	fs.StringVar(&opts.DataDir, "data-dir", "", "data directory to restore the domain into (holding the domain's keys, or empty with --keys)")
	fs.StringVar(&bundle, "keys", "", "key bundle of the domain (gatehouse admin keys export) to write to an empty --data-dir")
	fs.StringVar(&passFile, "passphrase-file", "", "file whose first line is the passphrase of the --keys bundle")
	fs.StringVar(&opts.Bucket.CredentialsFile, "s3-credentials-file", "", "file with the S3 credentials (default: the environment; docs/backups.md)")
	storeFlags.register(fs)
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("data-dir")
	return cmd
}
