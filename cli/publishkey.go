package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/pubseal"
)

// publishKeyCommand manages the domain's publish keys, which seal the
// deployments published to object storage (docs/object-storage.md).
func (a *app) publishKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publish-key",
		Short: "Export or rotate the key that seals deployments published to object storage",
	}
	var to string
	export := &cobra.Command{
		Use:   "export --to FILE",
		Short: "Write the domain's publish keys to a new file (0600) for gateways started with --config-url",
		Long: `Write the domain's publish keys to FILE, a new file of mode 0600, for a
standalone gateway: gatehouse gateway --config-url … --config-key FILE. The keys
open every deployment of the domain published to object storage, secrets
included: keep the file as you keep the domain's secrets. Only a domain admin
(user:admin) may export them, and every export is in the audit log. The keys
are never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return errors.New("--to is required: the keys are written to a file, never printed")
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			out, err := c.ExportPublishKeys(cmd.Context())
			if err != nil {
				return err
			}
			keys, err := pubseal.ParseKeys(out.Keys)
			if err != nil {
				return fmt.Errorf("publish keys from the admin node: %w", err)
			}
			if err := pubseal.WriteKeyFile(to, out.Domain, keys); err != nil {
				return err
			}
			return a.render(cmd, map[string]any{"domain": out.Domain, "ids": out.IDs, "file": to}, func(w io.Writer) {
				fmt.Fprintf(w, "publish keys of domain %s (%s) written to %s\n", out.Domain, strings.Join(out.IDs, ", "), to)
			})
		},
	}
	export.Flags().StringVar(&to, "to", "", "file to write (created, mode 0600; an existing file is not replaced)")
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new publish key; the previous one still opens what it sealed",
		Long: `Make a new publish key. The admin node publishing seals every group's
deployment again with it at once; node managers receive it with their next
answer. The previous key stays accepted (an older one is dropped), but a
standalone gateway opens the objects sealed with the new key only once its
--config-key file holds it: export the keys again and replace the file, then
restart the gateway. Meanwhile it keeps serving what it has.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			out, err := c.RotatePublishKey(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "new publish key %s; accepted: %s\n", out.IDs[0], strings.Join(out.IDs, ", "))
			})
		},
	}
	cmd.AddCommand(export, rotate)
	return cmd
}
