package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/adminnode"
	"github.com/gatehouse/gatehouse/adminnode/keybundle"
)

// storeEnv names the environment variable holding the PostgreSQL
// connection string, so that a password in it stays out of the process
// list.
const storeEnv = "GATEHOUSE_STORE"

// storeFlags say where the domain is kept: the connection string of a
// PostgreSQL database, or nothing for admin.db in the data dir.
type storeFlags struct {
	dsnFlag, file string
}

func (f *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.dsnFlag, "store", "", "PostgreSQL connection string of the domain's database (default: admin.db in --data-dir); "+
		"visible in the process list: prefer --store-file or "+storeEnv)
	fs.StringVar(&f.file, "store-file", "", "file whose first line is the PostgreSQL connection string (keep it 0600)")
}

// dsn returns the connection string given by a flag or storeEnv, "" for
// none. Two sources at once are refused rather than one silently chosen.
func (f *storeFlags) dsn() (string, error) {
	env := os.Getenv(storeEnv)
	n := 0
	for _, v := range []string{f.dsnFlag, f.file, env} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return "", fmt.Errorf("the PostgreSQL connection string is given more than once (--store, --store-file, %s): give it once", storeEnv)
	}
	switch {
	case f.file != "":
		dsn, err := firstLine(f.file)
		if err != nil {
			return "", fmt.Errorf("--store-file: %w", err)
		}
		return dsn, nil
	case f.dsnFlag != "":
		return f.dsnFlag, nil
	}
	return env, nil
}

// readPassphrase reads a key bundle's passphrase from the first line of
// path.
func readPassphrase(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("--passphrase-file is required: the key bundle is sealed with a passphrase")
	}
	p, err := firstLine(path)
	if err != nil {
		return nil, fmt.Errorf("--passphrase-file: %w", err)
	}
	return []byte(p), nil
}

func adminJoin(cmd *cobra.Command, dataDir, dsn, bundlePath, passFile string) error {
	pass, err := readPassphrase(passFile)
	if err != nil {
		return err
	}
	bundle, err := os.ReadFile(bundlePath)
	if err != nil {
		return fmt.Errorf("read key bundle: %w", err)
	}
	res, err := adminnode.Join(cmd.Context(), adminnode.JoinOptions{DataDir: dataDir, Store: dsn, Bundle: bundle, Passphrase: pass})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Joined domain %s: its keys are in %s.\n\n", res.Domain, res.DataDir)
	fmt.Fprintf(out, "Node managers pin this CA: %s\n", res.CAFingerprint)
	fmt.Fprintf(out, "Deployments are signed by: %s\n\n", res.SigningKeyFingerprint)
	fmt.Fprintf(out, "Next steps:\n  delete the key bundle %s\n  gatehouse admin run --data-dir %s --store-file FILE\n", bundlePath, res.DataDir)
	return nil
}

func adminKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Carry the domain's keys to another admin node",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(adminKeysExportCommand())
	return cmd
}

func adminKeysExportCommand() *cobra.Command {
	var dataDir, to, passFile string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the domain's keys to a passphrase-sealed key bundle",
		Long: `Write the domain CA (certificate and key), the signing key and the settings
key of the admin node in --data-dir to a new file --to (mode 0600), sealed
with the passphrase on the first line of --passphrase-file (at least 12
characters; Argon2id and XChaCha20-Poly1305). Another admin node of a domain
kept in PostgreSQL is made from it with gatehouse admin init --join. The
bundle is as precious as the keys: move it over a channel you trust, give
the passphrase by another one, and delete the bundle once joined.`,
		Example: `  gatehouse admin keys export --data-dir /var/lib/gatehouse/admin --to acme.ghk --passphrase-file pass.txt`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pass, err := readPassphrase(passFile)
			if err != nil {
				return err
			}
			keys, err := adminnode.ExportKeys(dataDir)
			if err != nil {
				return err
			}
			bundle, err := keybundle.Seal(keys, pass)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("write key bundle: %w", err)
			}
			_, err = f.Write(bundle)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(to)
				return fmt.Errorf("write key bundle %s: %w", to, err)
			}
			abs, _ := filepath.Abs(to)
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote the keys of domain %s to %s (sealed with the passphrase).\n", keys.Domain, abs)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&dataDir, "data-dir", "", "data directory of an admin node of the domain")
	fs.StringVar(&to, "to", "", "key bundle to create (never overwritten)")
	fs.StringVar(&passFile, "passphrase-file", "", "file whose first line is the passphrase")
	cmd.MarkFlagRequired("data-dir")
	cmd.MarkFlagRequired("to")
	return cmd
}
