package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
)

func (a *app) exportCommand() *cobra.Command {
	var (
		group, deployment, file string
	)
	cmd := &cobra.Command{
		Use:   "export --group G --deployment N [-o FILE]",
		Short: "Write a deployment's configuration to a signed package file",
		Long: `Write the configuration of a deployment as it was written, placeholders
unresolved, to a package file signed by this domain (docs/promotion.md), for
"gatehouse import" in another domain. The file is GROUP-N.ghpkg unless -o
names another ("-" for standard output). A deployment whose secret fields
hold anything but a ${secret:NAME} placeholder is refused: a package never
carries a secret in clear.`,
		Example: `  gatehouse export --group payments --deployment 7
  gatehouse export --group payments --deployment latest -o payments.ghpkg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDeploymentRef(deployment); err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			pkg, err := c.ExportPackage(cmd.Context(), group, deployment)
			if err != nil {
				return fmt.Errorf("export deployment %s of group %s: %w", deployment, group, err)
			}
			if file == "-" {
				_, err := cmd.OutOrStdout().Write(pkg)
				return err
			}
			if file == "" {
				file = group + "-" + deployment + ".ghpkg"
			}
			if err := os.WriteFile(file, pkg, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", file)
			return nil
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "group of the deployment")
	cmd.Flags().StringVar(&deployment, "deployment", "", `deployment number, or "latest"`)
	cmd.Flags().StringVarP(&file, "output", "o", "", `file to write (default GROUP-N.ghpkg; "-" for standard output)`)
	_ = cmd.MarkFlagRequired("group")
	_ = cmd.MarkFlagRequired("deployment")
	return cmd
}

func checkDeploymentRef(n string) error {
	if _, err := strconv.ParseUint(n, 10, 64); err != nil && n != client.Latest {
		return fmt.Errorf("deployment %q: want a number or %q", n, client.Latest)
	}
	return nil
}

// importOptions are the flags import and promote share.
type importOptions struct {
	group, env  string
	dryRun, yes bool
	rollout     rolloutOptions
}

func (o *importOptions) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.group, "group", "", "group to deploy the package to")
	cmd.Flags().StringVar(&o.env, "env", "", "environment resolving the placeholders (default: the group's)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show the diff and change nothing")
	cmd.Flags().BoolVar(&o.yes, "yes", false, "deploy without asking for confirmation")
	o.rollout.flags(cmd)
	_ = cmd.MarkFlagRequired("group")
}

// importPackage shows what deploying pkg changes and, unless it is a dry
// run or the user declines, deploys it.
func (a *app) importPackage(cmd *cobra.Command, c *client.Client, pkg []byte, o importOptions) error {
	ctx := cmd.Context()
	if err := o.rollout.check(); err != nil {
		return err
	}
	plan, err := c.Import(ctx, o.group, pkg, o.env, true)
	if err != nil {
		return fmt.Errorf("import into group %s: %w", o.group, err)
	}
	if o.dryRun {
		return a.render(cmd, plan, func(w io.Writer) { importPlan(w, plan) })
	}
	if !o.yes {
		if a.output == outputTable {
			importPlan(cmd.OutOrStdout(), plan)
		}
		ok, err := a.confirm(cmd, fmt.Sprintf("Deploy it to group %s? [y/N] ", o.group))
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("nothing deployed")
		}
	}
	done, err := c.Import(ctx, o.group, pkg, o.env, false)
	if err != nil {
		return fmt.Errorf("import into group %s: %w", o.group, err)
	}
	res := importResult{Import: done}
	if a.output == outputTable {
		fmt.Fprintf(cmd.OutOrStdout(), "deployed %s #%d %s, from %s\n", done.Deployment.Group, done.Deployment.Number, done.Deployment.Checksum, sourceText(done.Source))
	}
	var werr error
	if !o.rollout.noWait && done.Deployment != nil {
		res.Rollout, werr = a.waitRollout(ctx, c, a.progress(cmd), *done.Deployment, o.rollout)
	}
	if a.output != outputTable {
		if err := a.render(cmd, res, nil); err != nil {
			return err
		}
	}
	return werr
}

func sourceText(s apitypes.DeploymentSource) string {
	return fmt.Sprintf("%s/%s #%d %s", s.Domain, s.Group, s.Deployment, s.Checksum)
}

func importPlan(w io.Writer, p apitypes.Import) {
	fmt.Fprintf(w, "Package %s resolves to %s.\n", sourceText(p.Source), p.Checksum)
	diffTable(w, p.Diff)
	printWarnings(w, p.Warnings)
}

// confirm asks question on standard error and reads the answer from
// standard input; anything but y or yes, or no answer, is no.
func (a *app) confirm(cmd *cobra.Command, question string) (bool, error) {
	fmt.Fprint(cmd.ErrOrStderr(), question)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

func (a *app) importCommand() *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import FILE --group G [--env E] [--dry-run] [--yes]",
		Short: "Deploy a package exported by a trusted domain",
		Long: `Open a package file ("-" for standard input) against this domain's trusted
domains, resolve its placeholders with environment E (default: the group's),
validate it and show what deploying it to group G would change. Unless
--dry-run, ask for confirmation (or not, with --yes), then write it as the
group's draft and deploy it; the deployment and the audit log record the
package's source domain, group, deployment and checksum. Then wait for the
roll-out as "deploy" does (--timeout, --no-wait): the command succeeds only
if every instance of the group applied the deployment.`,
		Example: `  gatehouse import payments-7.ghpkg --group payments --env prod --dry-run
  gatehouse import payments-7.ghpkg --group payments --env prod --yes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pkg []byte
			var err error
			if args[0] == "-" {
				pkg, err = io.ReadAll(a.stdin)
			} else {
				pkg, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			return a.importPackage(cmd, c, pkg, o)
		},
	}
	o.flags(cmd)
	return cmd
}

// domainPair is two admin nodes, each with its own token and CA file.
type domainPair struct {
	from, fromToken, fromCA string
	to, toToken, toCA       string
}

func (p *domainPair) flags(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&p.from, "from", "", "address of the source domain's admin node, "+what)
	cmd.Flags().StringVar(&p.fromToken, "from-token", "", "API token on the source admin node")
	cmd.Flags().StringVar(&p.fromCA, "from-ca-cert", "", "PEM file of the source domain's CA")
	cmd.Flags().StringVar(&p.to, "to", "", "address of the target domain's admin node")
	cmd.Flags().StringVar(&p.toToken, "to-token", "", "API token on the target admin node")
	cmd.Flags().StringVar(&p.toCA, "to-ca-cert", "", "PEM file of the target domain's CA")
}

func (p *domainPair) connect(a *app) (src, dst *client.Client, err error) {
	if src, err = a.connectTo(p.from, p.fromToken, p.fromCA); err != nil {
		return nil, nil, fmt.Errorf("--from: %w", err)
	}
	if dst, err = a.connectTo(p.to, p.toToken, p.toCA); err != nil {
		return nil, nil, fmt.Errorf("--to: %w", err)
	}
	return src, dst, nil
}

// domainDiff compares the current deployments of group in two domains,
// as written: their resolved configurations differ by design.
func (a *app) domainDiff(cmd *cobra.Command, group string, p domainPair) error {
	src, dst, err := p.connect(a)
	if err != nil {
		return err
	}
	written := func(c *client.Client, where string) (*deploy.Config, string, error) {
		d, err := c.GetDeployment(cmd.Context(), group, client.Latest)
		if client.IsStatus(err, http.StatusNotFound) {
			return &deploy.Config{}, where + " none", nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("deployment of group %s at %s: %w", group, where, err)
		}
		label := fmt.Sprintf("%s #%d", where, d.Number)
		if d.Template != nil {
			return d.Template, label, nil
		}
		return d.Config, label, nil
	}
	from, fromLabel, err := written(src, p.from)
	if err != nil {
		return err
	}
	to, toLabel, err := written(dst, p.to)
	if err != nil {
		return err
	}
	d := apitypes.Diff{Group: group, From: fromLabel, To: toLabel, Changes: deploy.Diff(from, to)}
	if d.Changes == nil {
		d.Changes = []deploy.Change{}
	}
	return a.render(cmd, d, func(w io.Writer) { diffTable(w, d) })
}

func (a *app) promoteCommand() *cobra.Command {
	var (
		o          importOptions
		deployment string
		pair       domainPair
	)
	cmd := &cobra.Command{
		Use:   "promote --from URL --to URL --group G --deployment N [--env E] [--yes]",
		Short: "Export a deployment from one domain and import it into another",
		Long: `Export deployment N of group G from the admin node --from and import it
into the group of the same name of the admin node --to, as "gatehouse
export" and "gatehouse import" do: the diff is shown, and confirmation asked
unless --yes. Each side takes its token and CA certificate from its own
flags; a side without them uses --token and --ca-cert, the environment
variables, then the saved login when its address is the saved login's. Like import,
it waits for the roll-out in the target domain (--timeout, --no-wait).`,
		Example: `  gatehouse promote --from https://admin.dev:8443 --from-token $DEV_TOKEN \
    --to https://admin.prod:8443 --to-token $PROD_TOKEN --to-ca-cert prod-ca.pem \
    --group payments --deployment 7 --env prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDeploymentRef(deployment); err != nil {
				return err
			}
			src, dst, err := pair.connect(a)
			if err != nil {
				return err
			}
			pkg, err := src.ExportPackage(cmd.Context(), o.group, deployment)
			if err != nil {
				return fmt.Errorf("export deployment %s of group %s from %s: %w", deployment, o.group, pair.from, err)
			}
			return a.importPackage(cmd, dst, pkg, o)
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&deployment, "deployment", "", `deployment number to promote, or "latest"`)
	pair.flags(cmd, "exported from")
	_ = cmd.MarkFlagRequired("deployment")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// connectTo connects to the admin node at addr as connect does, the given
// token and CA file taking the place of --token and --ca-cert when set.
func (a *app) connectTo(addr, token, caCert string) (*client.Client, error) {
	b := *a
	b.addr = addr
	if token != "" {
		b.token = token
	}
	if caCert != "" {
		b.caCert = caCert
	}
	return b.connect()
}
