package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
)

func (a *app) envCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Manage the domain's environments: values and secrets that placeholders resolve to",
		Long: `An environment ("prod", "uat") is a named set of settings of the domain:
values, NAME=value, and secrets, whose values are never shown again once set.
Configurations promoted into this domain resolve their placeholders
(${NAME}, ${secret:NAME}) against one of them (docs/promotion.md).`,
	}
	cmd.AddCommand(a.envListCommand(), a.envGetCommand(), a.envSetCommand(), a.envUnsetCommand(),
		a.envDeleteCommand(), a.envSecretCommand())
	return cmd
}

func (a *app) envListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the environments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			envs, err := c.ListEnvironments(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, envs, func(w io.Writer) {
				t := newTable(w, "NAME", "VALUES", "SECRETS", "UPDATED", "BY")
				for _, e := range envs {
					t.row(e.Name, strconv.Itoa(len(e.Values)), strconv.Itoa(len(e.Secrets)), a.when(e.UpdatedAt), e.UpdatedBy)
				}
				t.flush()
			})
		},
	}
}

func (a *app) envGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get ENV",
		Short: "Show an environment's values and the names of its secrets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			e, err := c.GetEnvironment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.render(cmd, e, func(w io.Writer) {
				fields(w,
					"Name", e.Name,
					"Version", number(e.Version),
					"Created", a.when(e.CreatedAt),
					"Updated", a.when(e.UpdatedAt),
					"Updated by", e.UpdatedBy)
				if len(e.Values) > 0 {
					fmt.Fprintln(w)
					t := newTable(w, "NAME", "VALUE")
					for _, name := range slices.Sorted(maps.Keys(e.Values)) {
						t.row(name, e.Values[name])
					}
					t.flush()
				}
				if len(e.Secrets) > 0 {
					fmt.Fprintln(w)
					a.secretTable(w, e.Secrets)
				}
			})
		},
	}
}

func (a *app) secretTable(w io.Writer, secrets []apitypes.Secret) {
	t := newTable(w, "SECRET", "SET", "BY", "STATUS")
	for _, s := range secrets {
		status := "ok"
		if s.Unreadable {
			status = "unreadable (set it again)"
		}
		t.row(s.Name, a.when(s.SetAt), s.SetBy, status)
	}
	t.flush()
}

// parseAssignment reads NAME=value. The name is checked by the admin
// node, whose errors name it.
func parseAssignment(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return "", "", fmt.Errorf("%q: want NAME=value", s)
	}
	return strings.TrimSpace(name), value, nil
}

// parseEnvFile reads NAME=value lines, the format of docs/cli.md. Blank
// lines and lines starting with "#" are skipped, and so is a "#" after a
// space or tab outside quotes, to the end of the line; spaces around the
// name and the value are not part of them, and a value in matching single
// or double quotes loses them (there are no escapes: everything between
// the quotes is the value). A name set twice is an error: which one was
// meant?
func parseEnvFile(file string, data []byte) (map[string]string, error) {
	values := map[string]string{}
	lineOf := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line) // and the \r of CRLF line ends
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, err := parseAssignment(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		if value, err = envFileValue(value); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", file, n, name, err)
		}
		if first, dup := lineOf[name]; dup {
			return nil, fmt.Errorf("%s:%d: %s is already set on line %d", file, n, name, first)
		}
		values[name], lineOf[name] = value, n
	}
	return values, nil
}

// envFileValue is the value of a NAME=value line: without the spaces
// around it and a comment after it, and out of its quotes when quoted.
func envFileValue(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		// The value ends at the last quote that only a comment follows,
		// so that quotes inside it stay (there are no escapes).
		closing := false
		for end := len(s) - 1; end > 0; end-- {
			if s[end] != s[0] {
				continue
			}
			closing = true
			if rest := strings.TrimSpace(s[end+1:]); rest == "" || rest[0] == '#' {
				return s[1:end], nil
			}
		}
		if closing {
			return "", fmt.Errorf("%q: text after the closing quote (a comment starts with \" #\")", s)
		}
		// An unmatched quote is part of the value, as it was written.
	}
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return strings.TrimSpace(s[:i]), nil
		}
	}
	return s, nil
}

func (a *app) envSetCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "set ENV NAME=value... [-f FILE]",
		Short: "Set values of an environment, creating it when missing",
		Long: `Set values of the environment ENV in one change, creating the environment
when it does not exist; the other values are kept. NAME is upper-case
letters, digits and "_", starting with a letter.

-f reads NAME=value lines from FILE ("-" is standard input): blank lines and
lines starting with # are skipped, and so is a # after a space to the end
of the line; spaces around names and values are dropped, and a value in
single or double quotes loses them. Values given as
arguments win over the file's.

Values are not secret: they are shown by "env get". Use "env secret set"
for passwords and keys.`,
		Example: `  gatehouse env set prod ORDERS_UPSTREAM=10.0.0.5:8080 API_HOST=api.example.com
  gatehouse env set uat -f uat.env`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env := args[0]
			set := map[string]string{}
			if file != "" {
				data, err := a.readFile(file)
				if err != nil {
					return err
				}
				if set, err = parseEnvFile(file, data); err != nil {
					return err
				}
			}
			for _, arg := range args[1:] {
				name, value, err := parseAssignment(arg)
				if err != nil {
					return err
				}
				set[name] = value
			}
			if len(set) == 0 {
				return errors.New("nothing to set: give NAME=value arguments or -f FILE")
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			e, err := c.EditEnvironment(cmd.Context(), env, set, nil)
			if err != nil {
				return fmt.Errorf("set values of environment %s: %w", env, err)
			}
			return a.render(cmd, e, func(w io.Writer) {
				fmt.Fprintf(w, "Set %s in environment %s (version %d).\n", strings.Join(slices.Sorted(maps.Keys(set)), ", "), env, e.Version)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `read NAME=value lines from FILE ("-" for standard input)`)
	return cmd
}

// readFile reads file, "-" being standard input.
func (a *app) readFile(file string) ([]byte, error) {
	if file == "-" {
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	// The error already names the file: "open prod.env: no such file…".
	return os.ReadFile(file)
}

func (a *app) envUnsetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unset ENV NAME...",
		Short: "Remove values of an environment",
		Long: `Remove the values NAME... of the environment ENV in one change. A name the
environment does not have is an error, and then nothing is removed.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			env, names := args[0], args[1:]
			e, err := c.EditEnvironment(cmd.Context(), env, nil, names)
			if err != nil {
				return fmt.Errorf("unset values of environment %s: %w", env, err)
			}
			return a.render(cmd, e, func(w io.Writer) {
				fmt.Fprintf(w, "Unset %s in environment %s (version %d).\n", strings.Join(names, ", "), env, e.Version)
			})
		},
	}
}

func (a *app) envDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ENV",
		Short: "Delete an environment with its values and secrets",
		Long: `Delete the environment ENV with its values and its secrets. Deleting an
environment that has secrets needs secret:write as well as
environment:write.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteEnvironment(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete environment %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted environment %s.\n", args[0])
			return nil
		},
	}
}

func (a *app) envSecretCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage the secrets of an environment: set, unset, list; never shown",
	}
	var fromStdin bool
	set := &cobra.Command{
		Use:   "set ENV NAME",
		Short: "Set a secret of an environment, creating the environment when missing",
		Long: `Set the secret NAME of the environment ENV. The value is asked for on the
terminal, without echo, or read from standard input with --value-stdin
(all of it, less one final line break, so that a PEM file or a piped
password both work). It is never taken from the command line, where
shell history and the process list would keep it.

Once set, the value is never shown again, by any command or API call:
"env secret list" shows names and when they were set.`,
		Example: `  gatehouse env secret set prod DB_PASSWORD
  vault read -field=key secret/orders | gatehouse env secret set prod ORDERS_API_KEY --value-stdin
  gatehouse env secret set prod TLS_KEY --value-stdin < orders.key`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, name := args[0], args[1]
			c, err := a.connect()
			if err != nil {
				return err
			}
			value, err := a.secretValue(fromStdin, fmt.Sprintf("Value of secret %s in environment %s: ", name, env))
			if err != nil {
				return err
			}
			s, err := c.SetSecret(cmd.Context(), env, name, value)
			if err != nil {
				return fmt.Errorf("set secret %s of environment %s: %w", name, env, err)
			}
			return a.render(cmd, s, func(w io.Writer) {
				fmt.Fprintf(w, "Set secret %s of environment %s.\n", name, env)
			})
		},
	}
	set.Flags().BoolVar(&fromStdin, "value-stdin", false, "read the value from standard input")
	unset := &cobra.Command{
		Use:   "unset ENV NAME",
		Short: "Remove a secret of an environment",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.UnsetSecret(cmd.Context(), args[0], args[1]); err != nil {
				return fmt.Errorf("unset secret %s of environment %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Unset secret %s of environment %s.\n", args[1], args[0])
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list ENV",
		Short: "List the secrets of an environment: names and when they were set",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			secrets, err := c.ListSecrets(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.render(cmd, secrets, func(w io.Writer) { a.secretTable(w, secrets) })
		},
	}
	cmd.AddCommand(set, unset, list)
	return cmd
}

// secretValue reads a secret from the terminal, or all of standard input
// less one final line break.
func (a *app) secretValue(fromStdin bool, prompt string) (string, error) {
	if !fromStdin {
		v, err := a.prompt(prompt, "value-stdin")
		if err == nil && v == "" {
			err = errors.New("no value entered")
		}
		return v, err
	}
	data, err := io.ReadAll(a.stdin)
	if err != nil {
		return "", fmt.Errorf("read the value from standard input: %w", err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if v == "" {
		return "", errors.New("no value on standard input")
	}
	return v, nil
}

func (a *app) trustCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Manage the domains whose packages this domain accepts",
		Long: `A package promoted into this domain must be signed by a domain registered
here, with the public key that domain signs with ("gatehouse domain key"
there). Registering and removing domains needs trust:write.`,
	}
	var key string
	var replace bool
	add := &cobra.Command{
		Use:   "add NAME --key ed25519:...",
		Short: "Trust the packages of the domain NAME signed by its key",
		Long: `Trust the packages of the domain NAME signed by the key given, as
"gatehouse domain key" prints it in that domain. A domain already trusted
with another key is refused unless --replace (after that domain changed its
key, say).`,
		Example: `  gatehouse domain key        # in the domain dev, logged in to its admin node
  gatehouse trust add dev --key ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=   # in prod`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			pub, err := deploy.ParsePublicKey(key)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			old, err := c.GetTrustedDomain(cmd.Context(), name)
			switch {
			case err == nil && old.PublicKey != deploy.EncodePublicKey(pub) && !replace:
				return fmt.Errorf("domain %s is already trusted with key %s: give --replace to trust %s instead",
					name, old.Fingerprint, deploy.KeyFingerprint(pub))
			// The check is a guard against typos, not a permission: a
			// caller who may trust but not read domains goes ahead.
			case err != nil && !client.IsStatus(err, http.StatusNotFound) && !client.IsStatus(err, http.StatusForbidden):
				return err
			}
			d, err := c.TrustDomain(cmd.Context(), name, deploy.EncodePublicKey(pub))
			if err != nil {
				return fmt.Errorf("trust domain %s: %w", name, err)
			}
			return a.render(cmd, d, func(w io.Writer) {
				fmt.Fprintf(w, "Trusting the packages of domain %s signed by %s.\n", d.Name, d.Fingerprint)
			})
		},
	}
	add.Flags().StringVar(&key, "key", "", `the domain's public key, "ed25519:…"`)
	add.Flags().BoolVar(&replace, "replace", false, "replace the key the domain is trusted with")
	_ = add.MarkFlagRequired("key")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the trusted domains",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			ds, err := c.ListTrustedDomains(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, ds, func(w io.Writer) {
				t := newTable(w, "NAME", "KEY FINGERPRINT", "ADDED", "BY")
				for _, d := range ds {
					t.row(d.Name, d.Fingerprint, a.when(d.AddedAt), d.AddedBy)
				}
				t.flush()
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop trusting a domain's packages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.UntrustDomain(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("remove trusted domain %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "No longer trusting domain %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func (a *app) domainCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domain",
		Short: "Show this domain's identity",
	}
	key := &cobra.Command{
		Use:   "key",
		Short: "Print the public key this domain signs with, for other domains to trust",
		Long: `Print the public key this domain signs its deployments and packages with,
"ed25519:…", alone on standard output; how to register it in another domain
goes to standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			d, err := c.Domain(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Domain %s signs with %s. To accept its packages in another domain, run there:\n  gatehouse trust add %s --key %s\n",
				d.Name, d.SigningKeyFingerprint, d.Name, d.SigningKey)
			return a.render(cmd, d, func(w io.Writer) { fmt.Fprintln(w, d.SigningKey) })
		},
	}
	cmd.AddCommand(key)
	return cmd
}
