package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/backupfile"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/objstore"
)

// backupResult is what gatehouse admin backup prints.
type backupResult struct {
	Name     string         `json:"name"`
	URL      string         `json:"url"`
	Size     int64          `json:"size"`
	SHA256   string         `json:"sha256"`
	Domain   string         `json:"domain"`
	TakenAt  time.Time      `json:"taken_at"`
	Records  int            `json:"records"`
	Counts   map[string]int `json:"counts"`
	Checksum string         `json:"checksum"`
}

func (a *app) backupCommand() *cobra.Command {
	var (
		to      string
		creds   string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "backup --to URL",
		Short: "Take a backup of the domain from the running admin node",
		Long: `Ask the admin node for a backup of the whole domain and store it as one
object under --to: a directory (file:///dir) or an S3 location
(s3://bucket/prefix). The admin node reads it from one snapshot of its store
while it goes on serving and being written to, and signs it with the
domain's signing key; the object is checked (checksum, signature, domain) as
it is stored, and only a whole, verified backup is left in place. Its name,
DOMAIN-YYYYMMDDTHHMMSS.mmmZ.ghbackup, sorts by time.

It prints the object's name and URL (what gatehouse admin restore --from
takes), its size and SHA-256 (what sha256sum prints), and what it holds.
The domain's keys are never in a backup (docs/backups.md). Needs the
permission backup:create (domain-admin).`,
		Example: `  gatehouse admin backup --to file:///var/backups/gatehouse
  gatehouse admin backup --to s3://acme-backups/gatehouse -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			bucket, err := objstore.Open(ctx, to, objstore.Options{CredentialsFile: creds})
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: must be positive", timeout)
			}
			c, err := a.connectFor(timeout)
			if err != nil {
				return err
			}
			d, err := c.Domain(ctx)
			if err != nil {
				return fmt.Errorf("backup: read the domain: %w", err)
			}
			key, err := deploy.ParsePublicKey(d.SigningKey)
			if err != nil {
				return fmt.Errorf("backup: the domain's signing key: %w", err)
			}
			var st backupfile.Stored
			err = c.Backup(ctx, func(name string, body io.Reader) error {
				st, err = backupfile.Upload(ctx, bucket, name, body, backupfile.Expect{Domain: d.Name, Key: key})
				return err
			})
			if err != nil {
				return fmt.Errorf("backup of domain %s to %s failed: %w", d.Name, bucket, err)
			}
			res := backupResult{Name: st.Name, URL: strings.TrimSuffix(to, "/") + "/" + st.Name, Size: st.Size, SHA256: st.SHA256,
				Domain: st.Domain, TakenAt: st.TakenAt, Records: st.Items, Counts: st.Counts, Checksum: st.Checksum}
			out := cmd.OutOrStdout()
			if a.output != outputTable {
				return a.print(out, res)
			}
			fmt.Fprintf(out, "Backup %s\n  url:      %s\n  size:     %d bytes\n  sha256:   %s\n", res.Name, res.URL, res.Size, res.SHA256)
			fmt.Fprintf(out, "  domain:   %s, as of %s\n  records:  %s\n  checksum: %s (signed)\n", res.Domain,
				res.TakenAt.In(a.loc).Format("2006-01-02 15:04:05 MST"), backupfile.CountsText(res.Counts, nil), res.Checksum)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "where to store the backup: file:///dir or s3://bucket/prefix")
	cmd.Flags().StringVar(&creds, "s3-credentials-file", "", "file with the S3 credentials (default: the environment; docs/backups.md)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "give up when the backup has not been stored after this long")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}
