package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Edit a group's draft configuration",
		Long: `A group's configuration is edited as a draft, then deployed with
"gatehouse deploy". The configuration format is described in
docs/configuration.md.`,
	}
	cmd.AddCommand(a.configApplyCommand(), a.configDumpCommand(), a.configValidateCommand())
	return cmd
}

// readInput reads the file named by -f, "-" being standard input.
func (a *app) readInput(file string) ([]byte, error) {
	if file == "-" {
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return data, nil
}

// contentType says how the admin node is to parse a file: by its
// extension, YAML unless it is .json (JSON is YAML anyway, but the
// declared type makes the server's error messages speak of JSON).
func contentType(file string) string {
	if strings.EqualFold(filepath.Ext(file), ".json") {
		return "application/json"
	}
	return "application/yaml"
}

func (a *app) configApplyCommand() *cobra.Command {
	var group, file string
	var allowInvalid bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE --group G",
		Short: "Replace a group's draft with a configuration file",
		Long: `Replace the group's draft with the configuration in FILE (YAML, or JSON when
it ends in .json; "-" reads standard input). The file is sent as it is, so
that errors point at its lines; every error is listed. Secrets that read as
"(redacted)" (from "config dump") keep their stored value.

The file is validated first: an invalid configuration is not applied (every
error is listed and the command exits 1) unless --allow-invalid stores it as
a work in progress, which "deploy" will refuse until it is fixed.

The draft is read first and written back only if nobody changed it in
between; if somebody did, nothing is applied: run the command again.`,
		Example: `  gatehouse config apply -f web.yaml --group web`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := a.readInput(file)
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			if !allowInvalid {
				v, err := c.ValidateDraft(cmd.Context(), group, data, contentType(file))
				if err != nil {
					return fmt.Errorf("validate %s: %w", file, err)
				}
				if !v.Valid {
					var b strings.Builder
					validationText(&b, file, v)
					return fmt.Errorf("%snothing applied (--allow-invalid stores an invalid file as a work in progress)", b.String())
				}
			}
			cur, err := c.GetDraft(cmd.Context(), group)
			if err != nil {
				return fmt.Errorf("read the draft of group %s: %w", group, err)
			}
			d, err := c.PutDraft(cmd.Context(), group, data, contentType(file), cur.Version)
			switch {
			case client.IsStatus(err, http.StatusConflict):
				return fmt.Errorf("the draft of group %s changed while %s was being applied (another edit happened); nothing was applied, run the command again", group, file)
			case err != nil:
				return fmt.Errorf("apply %s to the draft of group %s: %w", file, group, err)
			}
			return a.render(cmd, d, func(w io.Writer) {
				fmt.Fprintf(w, "Applied %s to the draft of group %s (version %d).\n", file, group, d.Version)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `configuration file, YAML or JSON ("-" for standard input)`)
	cmd.Flags().StringVar(&group, "group", "", "group whose draft to replace")
	cmd.Flags().BoolVar(&allowInvalid, "allow-invalid", false, "store the file even if it does not validate (a work in progress)")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

func (a *app) configDumpCommand() *cobra.Command {
	var group, deployment string
	cmd := &cobra.Command{
		Use:   "dump --group G [--deployment N]",
		Short: "Print a group's draft or deployed configuration",
		Long: `Print the configuration of the group's draft, or of one of its deployments
(a number, or "latest" for the current one), as YAML, or as JSON with -o
json. Secrets read as "(redacted)"; the output can be edited and applied
back with "config apply", which keeps them.`,
		Example: `  gatehouse config dump --group web > web.yaml
  gatehouse config dump --group web --deployment latest -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			var cfg deploy.Config
			if deployment == "" {
				d, err := c.GetDraft(cmd.Context(), group)
				if err != nil {
					return fmt.Errorf("read the draft of group %s: %w", group, err)
				}
				cfg = d.Config
			} else {
				d, err := c.GetDeployment(cmd.Context(), group, deployment)
				if err != nil {
					return fmt.Errorf("read deployment %s of group %s: %w", deployment, group, err)
				}
				if d.Config != nil {
					cfg = *d.Config
				}
			}
			if a.output == outputJSON {
				return printJSON(cmd.OutOrStdout(), cfg)
			}
			out, err := deploy.EncodeYAML(&cfg)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "group whose configuration to print")
	cmd.Flags().StringVar(&deployment, "deployment", "", `deployment number, or "latest" (default: the draft)`)
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

func (a *app) configValidateCommand() *cobra.Command {
	var group, file string
	cmd := &cobra.Command{
		Use:   "validate --group G [-f FILE]",
		Short: "Validate a group's draft, or a file against the group",
		Long: `Validate the group's draft, or with -f the configuration in FILE as if it
were the group's draft, without changing anything. Prints the checksum of
a valid configuration and every error of an invalid one, and then exits
with status 1. A valid configuration that instances of the group lack
something to run (an external policy's plugin absent from their host, a
feature level above their gateway's) is printed with a warning naming
them: deploying it as it is would be refused by those instances.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var data []byte
			what := "the draft of group " + group
			if file != "" {
				var err error
				if data, err = a.readInput(file); err != nil {
					return err
				}
				what = file
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			v, err := c.ValidateDraft(cmd.Context(), group, data, contentType(file))
			if err != nil {
				return fmt.Errorf("validate %s: %w", what, err)
			}
			if err := a.render(cmd, v, func(w io.Writer) { validationText(w, what, v) }); err != nil {
				return err
			}
			if !v.Valid {
				return fmt.Errorf("%s is not valid", what)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `configuration file to validate instead of the draft ("-" for standard input)`)
	cmd.Flags().StringVar(&group, "group", "", "group to validate for")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

func validationText(w io.Writer, what string, v apitypes.Validation) {
	if v.Valid {
		fmt.Fprintf(w, "%s is valid: %s\n", what, v.Checksum)
		printWarnings(w, v.Warnings)
		return
	}
	fmt.Fprintf(w, "%s has %s:\n", what, plural(len(v.Errors), "error"))
	for _, e := range v.Errors {
		fmt.Fprint(w, "  ")
		if e.Field != "" {
			fmt.Fprint(w, e.Field+": ")
		}
		fmt.Fprint(w, e.Message)
		if e.Line > 0 {
			fmt.Fprintf(w, " (line %d)", e.Line)
		}
		fmt.Fprintln(w)
	}
}

// printWarnings writes what instances lack to run a configuration, one
// line each, naming the field and the instances.
func printWarnings(w io.Writer, warnings []apitypes.Warning) {
	for _, x := range warnings {
		fmt.Fprint(w, "warning: ")
		if x.Field != "" {
			fmt.Fprint(w, x.Field+": ")
		}
		fmt.Fprintln(w, x.Message)
	}
}
