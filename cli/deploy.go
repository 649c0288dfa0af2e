package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
)

func (a *app) deployCommand() *cobra.Command {
	var (
		group, message string
		draftVersion   uint64
		strict         bool
		force          bool
		allowPartial   bool
		ro             rolloutOptions
	)
	cmd := &cobra.Command{
		Use:   "deploy --group G -m MESSAGE",
		Short: "Deploy a group's draft and wait until its instances apply it",
		Long: `Freeze the group's draft into its next deployment, signed by the admin node,
which the group's instances then apply. The message is kept in the
deployment history and the audit log.

Then wait (--timeout, default 60s) until every instance of the group has
applied it, printing a line per instance as it applies or refuses it. The
command succeeds only if every instance applied the deployment; otherwise
it fails, naming each instance that refused it (with the error its gateway
reported), stopped reporting (Lost Connection, Offline) or had not applied
it when the time was up. --no-wait returns as soon as the deployment is
made.

A draft identical to the current deployment is not deployed: the command
says "nothing to deploy" and succeeds; --force deploys it again all the same.

With --draft-version, the deployment is made only if the draft is still at
that version ("config apply" and "-o json" of "config dump" show it), so
that what was reviewed is what is deployed.

A draft that uses a configuration feature some instances' gateways are of
too old a feature level to run is refused before it is signed, naming those
instances and the field that needs the level. With --allow-partial it is
deployed all the same, to the instances that can run it only: the others
keep the deployment they run, and are listed as skipped (here, in the
roll-out, in "gatehouse status" and in the group's summary). The roll-out
then succeeds once every other instance applied it.

A draft that instances of the group lack an external policy's plugin for
(absent from their host's plugin directory) is deployed with a warning
naming them; with --strict it is refused and nothing is deployed.`,
		Example: `  gatehouse deploy --group web -m "add the orders service"
  gatehouse deploy --group web -m "add the orders service" --timeout 2m
  gatehouse deploy --group web -m "same again" --force --no-wait
  gatehouse deploy --group web -m "sampled access log" --allow-partial`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ro.check(); err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			d, err := c.Deploy(cmd.Context(), group, apitypes.DeployRequest{Message: message, DraftVersion: draftVersion, Strict: strict, Force: force, AllowPartial: allowPartial})
			if client.IsNothingToDeploy(err) {
				var apiErr *client.APIError
				errors.As(err, &apiErr)
				res := deployResult{Reason: apiErr.Detail.Message}
				return a.render(cmd, res, func(w io.Writer) {
					fmt.Fprintf(w, "%s: nothing deployed (--force deploys it again)\n", res.Reason)
				})
			}
			if err != nil {
				return fmt.Errorf("deploy group %s: %w", group, err)
			}
			printWarnings(cmd.ErrOrStderr(), d.Warnings)
			printSkipped(cmd.ErrOrStderr(), d.Skipped)
			return a.finishDeploy(cmd, c, d, ro, fmt.Sprintf("deployed %s #%d %s\n", d.Group, d.Number, d.Checksum))
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "group to deploy")
	cmd.Flags().StringVarP(&message, "message", "m", "", "what the deployment changes, and why")
	cmd.Flags().Uint64Var(&draftVersion, "draft-version", 0, "deploy only if the draft is at this version")
	cmd.Flags().BoolVar(&strict, "strict", false, "refuse, rather than warn about, a draft that instances of the group lack something to run")
	cmd.Flags().BoolVar(&force, "force", false, "deploy even if the draft is the current deployment")
	cmd.Flags().BoolVar(&allowPartial, "allow-partial", false, "deploy a draft some instances' gateways are of too low a feature level to run to the others only, rather than refuse it")
	ro.flags(cmd)
	_ = cmd.MarkFlagRequired("group")
	_ = cmd.MarkFlagRequired("message")
	return cmd
}

// printSkipped names the instances a partial deployment left out.
func printSkipped(w io.Writer, skipped []apitypes.SkippedInstance) {
	if len(skipped) == 0 {
		return
	}
	fmt.Fprintf(w, "partial deployment: %d instance(s) skipped, they keep what they run:\n", len(skipped))
	for _, sk := range skipped {
		fmt.Fprintf(w, "  %s (host %s): %s\n", sk.Instance, sk.Host, sk.Reason)
	}
}

// finishDeploy prints what a deploy or rollback made (head) and, unless
// --no-wait, waits for its roll-out; with -o json, the deployment and its
// roll-out are printed at the end, as one document.
func (a *app) finishDeploy(cmd *cobra.Command, c *client.Client, d apitypes.Deployment, ro rolloutOptions, head string) error {
	res := deployResult{Deployed: true, Deployment: &d}
	if a.output == outputTable {
		fmt.Fprint(cmd.OutOrStdout(), head)
	}
	var werr error
	if !ro.noWait {
		res.Rollout, werr = a.waitRollout(cmd.Context(), c, a.progress(cmd), d, ro)
	}
	if a.output != outputTable {
		if err := a.render(cmd, res, nil); err != nil {
			return err
		}
	}
	return werr
}

func (a *app) deploymentsCommand() *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "deployments --group G",
		Short: "List a group's deployments, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			ds, err := c.ListDeployments(cmd.Context(), group)
			if err != nil {
				return err
			}
			return a.render(cmd, ds, func(w io.Writer) { a.deploymentTable(w, ds) })
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "group whose deployments to list")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

func (a *app) deploymentTable(w io.Writer, ds []apitypes.Deployment) {
	t := newTable(w, "NUMBER", "CREATED", "AUTHOR", "CHECKSUM", "ROLLBACK OF", "MESSAGE")
	for _, d := range ds {
		t.row(number(d.Number), a.when(d.CreatedAt), d.Author, shortChecksum(d.Checksum), number(d.RollbackOf), d.Message)
	}
	t.flush()
}

func (a *app) diffCommand() *cobra.Command {
	var (
		group  string
		remote domainPair
	)
	cmd := &cobra.Command{
		Use:   "diff --group G [FROM [TO]]",
		Short: "Show what changed between deployments, or what deploying the draft would change",
		Long: `Compare two configurations of a group, resource by resource:

  gatehouse diff --group G            the current deployment → the draft:
                                      what "gatehouse deploy" would change
  gatehouse diff --group G FROM       deployment FROM → the current deployment:
                                      what has changed since FROM
  gatehouse diff --group G FROM TO    deployment FROM → deployment TO

With --from and --to, two admin nodes (two domains) are compared instead:
the current deployments of the group of that name in each, as written
(placeholders unresolved), to spot drift between environments.

FROM and TO are deployment numbers or "latest". The table has one row per
added or removed resource and one per changed field of a changed resource,
values in JSON, cut to 60 characters (-o json has them whole). Secrets show
as "(redacted)" and certificate chains as "(changed)".`,
		Example: `  gatehouse diff --group web
  gatehouse diff --group web 3 5
  gatehouse diff --group web --from https://admin.dev:8443 --from-token "$DEV_TOKEN" \
    --to https://admin.prod:8443 --to-token "$PROD_TOKEN"`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if remote.from != "" || remote.to != "" {
				if len(args) > 0 {
					return errors.New("--from and --to compare current deployments: give no deployment numbers")
				}
				return a.domainDiff(cmd, group, remote)
			}
			for _, n := range args {
				if _, err := strconv.ParseUint(n, 10, 64); err != nil && n != client.Latest {
					return fmt.Errorf("deployment %q: want a number or %q", n, client.Latest)
				}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			var d apitypes.Diff
			switch len(args) {
			case 0:
				d, err = c.DraftDiff(cmd.Context(), group)
			case 1:
				d, err = c.Diff(cmd.Context(), group, args[0], client.Latest)
			default:
				d, err = c.Diff(cmd.Context(), group, args[0], args[1])
			}
			if err != nil {
				return fmt.Errorf("diff group %s: %w", group, err)
			}
			return a.render(cmd, d, func(w io.Writer) { diffTable(w, d) })
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "group to compare the configurations of")
	remote.flags(cmd, "compared with --to")
	_ = cmd.MarkFlagRequired("group")
	cmd.MarkFlagsRequiredTogether("from", "to")
	return cmd
}

// diffCell is the width of the FROM and TO columns.
const diffCell = 60

func diffTable(w io.Writer, d apitypes.Diff) {
	if len(d.Changes) == 0 {
		fmt.Fprintf(w, "No changes from %s to %s.\n", d.From, d.To)
		return
	}
	t := newTable(w, "KIND", "NAME", "OP", "FIELD", "FROM", "TO")
	for _, c := range d.Changes {
		if len(c.Fields) == 0 {
			t.row(c.Kind, c.Name, c.Op, "", "", "")
			continue
		}
		for _, f := range c.Fields {
			t.row(c.Kind, c.Name, c.Op, f.Path, truncate(diffValue(f.From), diffCell), truncate(diffValue(f.To), diffCell))
		}
	}
	t.flush()
}

// diffValue shows a value in JSON, but the placeholders standing for
// secrets and certificates as they are: quoted, they would read as the
// value itself.
func diffValue(v any) string {
	switch v {
	case nil:
		return ""
	case deploy.Redacted, deploy.ChangedPEM:
		return v.(string)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func (a *app) rollbackCommand() *cobra.Command {
	var (
		group, message string
		to             uint64
		keepDraft      bool
		allowPartial   bool
		ro             rolloutOptions
	)
	cmd := &cobra.Command{
		Use:   "rollback --group G --to N -m MESSAGE",
		Short: "Deploy an earlier deployment's configuration again",
		Long: `Deploy the configuration of deployment N again, as the group's next
deployment: history only grows. Then wait for the roll-out as "deploy" does
(--timeout, --no-wait): the command succeeds only if every instance of the
group applied it.

The group's draft is set to the configuration rolled back to (as written,
placeholders unresolved), so that the change rolled back is not shipped
again by the next, unrelated deploy. --keep-draft leaves the draft as it
was: its changes are then still in the next deploy. The command says which
it did.

A configuration some instances' gateways are of too low a feature level for
is refused, as by deploy; --allow-partial rolls back to it on the others
only.`,
		Example: `  gatehouse rollback --group web --to 4 -m "5 breaks the orders service"
  gatehouse rollback --group web --to 4 -m "5 breaks the orders service" --keep-draft`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ro.check(); err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			d, err := c.RollbackWith(cmd.Context(), group, to, apitypes.RollbackRequest{Message: message, KeepDraft: keepDraft, AllowPartial: allowPartial})
			if err == nil {
				printSkipped(cmd.ErrOrStderr(), d.Skipped)
			}
			if err != nil {
				return fmt.Errorf("roll group %s back to #%d: %w", group, to, err)
			}
			head := fmt.Sprintf("rolled back %s to #%d: deployed #%d %s\n", d.Group, d.RollbackOf, d.Number, d.Checksum)
			if d.Draft == apitypes.DraftReset {
				head += fmt.Sprintf("draft reset to the configuration of #%d\n", d.RollbackOf)
			} else {
				head += "draft kept as it was: the next deploy ships its changes\n"
			}
			return a.finishDeploy(cmd, c, d, ro, head)
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "group to roll back")
	cmd.Flags().Uint64Var(&to, "to", 0, "number of the deployment to deploy again")
	cmd.Flags().StringVarP(&message, "message", "m", "", "why")
	cmd.Flags().BoolVar(&keepDraft, "keep-draft", false, "leave the draft as it is instead of setting it to the configuration rolled back to")
	cmd.Flags().BoolVar(&allowPartial, "allow-partial", false, "roll back on the instances that can run the configuration only, rather than refuse it")
	ro.flags(cmd)
	for _, f := range []string{"group", "to", "message"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}
