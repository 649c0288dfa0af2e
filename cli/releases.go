package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

func (a *app) releaseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Manage gateway releases, the binaries groups run (docs/upgrades.md)",
	}
	cmd.AddCommand(a.releaseUploadCommand(), a.releaseListCommand(), a.releaseDeleteCommand())
	return cmd
}

func (a *app) releaseUploadCommand() *cobra.Command {
	var version string
	cmd := &cobra.Command{
		Use:   "upload FILE --version V",
		Short: "Store a gatehouse binary as a gateway release, signed by the domain key",
		Long: `Upload a gatehouse binary to the admin node (permission host:write), which
stores it with its SHA-256, signed by the domain's key. Groups run it with
"group update G --gateway-version V"; node managers download it, check the
checksum and the signature, and run the group's instances on it.`,
		Example: `  gatehouse release upload ./gatehouse --version 1.4.0`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version == "" {
				return errors.New("--version is required: the name groups pin the release by")
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("release file: %w", err)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			r, err := c.UploadRelease(cmd.Context(), version, data)
			if err != nil {
				return fmt.Errorf("upload release %s: %w", version, err)
			}
			return a.render(cmd, r, func(w io.Writer) {
				fmt.Fprintf(w, "Release %s stored: %d bytes, sha256 %s.\n", r.Version, r.Size, r.SHA256)
			})
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "the release's version (letters, digits, ._+-)")
	return cmd
}

func (a *app) releaseListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the gateway releases and the groups that use them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			rs, err := c.ListReleases(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, rs, func(w io.Writer) {
				t := newTable(w, "VERSION", "SIZE", "SHA256", "GROUPS", "UPLOADED", "BY")
				for _, r := range rs {
					t.row(r.Version, fmt.Sprint(r.Size), r.SHA256[:min(len(r.SHA256), 16)], strings.Join(r.Groups, ","), a.when(r.UploadedAt), r.UploadedBy)
				}
				t.flush()
			})
		},
	}
}

func (a *app) releaseDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete VERSION",
		Short: "Delete a release that no group runs or rolls out from or to",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteRelease(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete release %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted release %s.\n", args[0])
			return nil
		},
	}
}

// groupGatewayCommand shows a group's release and rollouts.
func (a *app) groupGatewayCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "gateway NAME",
		Short: "Show a group's gateway release, its rollout and their history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			gw, err := c.GroupGateway(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.render(cmd, gw, func(w io.Writer) { a.printGroupGateway(w, gw) })
		},
	}
}

func releaseName(v string) string {
	if v == "" {
		return "(node manager's binary)"
	}
	return v
}

func (a *app) printGroupGateway(w io.Writer, gw apitypes.GroupGateway) {
	fields(w, "Group", gw.Group, "Release", releaseName(gw.Version), "Max unavailable", fmt.Sprint(gw.MaxUnavailable))
	if len(gw.Instances) > 0 {
		t := newTable(w, "INSTANCE", "RUNS")
		for _, name := range slices.Sorted(maps.Keys(gw.Instances)) {
			t.row(name, releaseName(gw.Instances[name]))
		}
		t.flush()
	}
	rollouts := gw.History
	if gw.Rollout != nil {
		rollouts = append([]apitypes.ReleaseRollout{*gw.Rollout}, rollouts...)
	}
	if len(rollouts) == 0 {
		return
	}
	fmt.Fprintln(w)
	t := newTable(w, "ROLLOUT", "FROM", "TO", "STATE", "BY", "STARTED", "ENDED", "ERROR")
	for _, r := range rollouts {
		t.row(fmt.Sprint(r.ID), releaseName(r.From), releaseName(r.To), r.State, r.By, a.when(r.StartedAt), a.when(r.EndedAt), r.Error)
	}
	t.flush()
	if gw.Rollout != nil && len(gw.Rollout.Events) > 0 {
		fmt.Fprintf(w, "\nRollout %d:\n", gw.Rollout.ID)
		for _, e := range gw.Rollout.Events {
			who := ""
			if e.Instance != "" {
				who = e.Instance + ": "
			}
			fmt.Fprintf(w, "  %s  %s%s\n", e.At.UTC().Format(time.RFC3339), who, e.What)
		}
	}
}

// setGroupGateway starts a rolling upgrade (or resumes or rolls back a
// paused one) and, with wait, follows it to its end: an error when it
// rolled back or paused on a failure, unless rolling back was asked.
func (a *app) setGroupGateway(cmd *cobra.Command, group string, in apitypes.GroupGatewayUpdate, wait bool, timeout time.Duration) error {
	c, err := a.connect()
	if err != nil {
		return err
	}
	gw, err := c.SetGroupGateway(cmd.Context(), group, in)
	if err != nil {
		return fmt.Errorf("set the gateway release of group %s: %w", group, err)
	}
	if !wait || gw.Rollout == nil {
		return a.render(cmd, gw, func(w io.Writer) { a.printGroupGateway(w, gw) })
	}
	id := gw.Rollout.ID
	progress := cmd.ErrOrStderr()
	fmt.Fprintf(progress, "Rollout %d of group %s (%s, from release %s to %s); moving to release %s; waiting up to %s...\n",
		id, group, gw.Rollout.State, releaseName(gw.Rollout.From), releaseName(gw.Rollout.To), releaseName(in.Version), timeout)
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	seen := 0
	for {
		gw, err = c.GroupGateway(ctx, group)
		if err == nil && gw.Rollout != nil && gw.Rollout.ID == id {
			r := gw.Rollout
			for _, e := range r.Events[min(seen, len(r.Events)):] {
				fmt.Fprintf(progress, "  %s%s\n", prefix(e.Instance), e.What)
			}
			seen = len(r.Events)
			switch r.State {
			case "done":
				return a.render(cmd, gw, func(w io.Writer) { a.printGroupGateway(w, gw) })
			case "rolled-back":
				if in.Version == r.From {
					// A paused rollout rolled back as asked.
					return a.render(cmd, gw, func(w io.Writer) { a.printGroupGateway(w, gw) })
				}
				return fmt.Errorf("rollout %d of group %s rolled back to release %s: %s", id, group, releaseName(r.From), r.Error)
			case "paused":
				return fmt.Errorf("rollout %d of group %s paused with %d instance(s) on release %s: %s; resume it with --gateway-version %s, or roll it back with --gateway-version %s",
					id, group, len(r.Done), releaseName(r.To), r.Error, shellWord(r.To), shellWord(r.From))
			}
		}
		select {
		case <-ctx.Done():
			if cmd.Context().Err() != nil {
				return cmd.Context().Err()
			}
			return fmt.Errorf("rollout %d of group %s is not over after %s", id, group, timeout)
		case <-time.After(restartPoll):
		}
	}
}

func prefix(instance string) string {
	if instance == "" {
		return ""
	}
	return instance + ": "
}

// shellWord is a release version as a command-line argument: "" quoted.
func shellWord(v string) string {
	if v == "" {
		return `""`
	}
	return v
}
