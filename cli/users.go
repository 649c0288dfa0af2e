package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the administrators of the domain",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			users, err := c.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, users, func(w io.Writer) {
				t := newTable(w, "NAME", "DISABLED", "CREATED")
				for _, u := range users {
					t.row(u.Name, strconv.FormatBool(u.Disabled), a.when(u.CreatedAt))
				}
				t.flush()
			})
		},
	}
	var createStdin bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user",
		Long: `Create a user with a password, asked for twice on the terminal or read from
the first line of standard input with --password-stdin. A new user may do
nothing until bound to a role ("gatehouse role bind").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			password, err := a.newPassword(createStdin, fmt.Sprintf("Password for %s: ", args[0]))
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), apitypes.UserCreate{Name: args[0], Password: password})
			if err != nil {
				return fmt.Errorf("create user %s: %w", args[0], err)
			}
			return a.render(cmd, u, func(w io.Writer) { fmt.Fprintf(w, "Created user %s.\n", u.Name) })
		},
	}
	create.Flags().BoolVar(&createStdin, "password-stdin", false, "read the password from the first line of standard input")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user with its role bindings and tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete user %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted user %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, create, del,
		a.userDisableCommand("disable", true), a.userDisableCommand("enable", false),
		a.passwdCommand())
	return cmd
}

func (a *app) userDisableCommand(verb string, disabled bool) *cobra.Command {
	short := "Allow a disabled user to log in again"
	if disabled {
		short = "Stop a user from logging in, revoking its tokens"
	}
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			u, err := c.UpdateUser(cmd.Context(), args[0], apitypes.UserUpdate{Disabled: &disabled})
			if err != nil {
				return fmt.Errorf("%s user %s: %w", verb, args[0], err)
			}
			return a.render(cmd, u, func(w io.Writer) { fmt.Fprintf(w, "User %s is %sd.\n", u.Name, verb) })
		},
	}
}

func (a *app) passwdCommand() *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd [NAME]",
		Short: "Change your password, or set another user's",
		Long: `Without NAME, change your own password: the current one is asked for, then
the new one twice. With NAME, set that user's password (user:admin).

With --password-stdin the passwords are read from standard input instead,
one a line: the current then the new one for your own, the new one for
another user's.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				p, err := a.newPassword(fromStdin, fmt.Sprintf("New password for %s: ", args[0]))
				if err != nil {
					return err
				}
				if _, err := c.UpdateUser(cmd.Context(), args[0], apitypes.UserUpdate{Password: &p}); err != nil {
					return fmt.Errorf("set the password of %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Password of %s set.\n", args[0])
				return nil
			}
			var current, next string
			if fromStdin {
				r := bufio.NewReader(a.stdin)
				if current, err = readLine(r, "current password"); err != nil {
					return err
				}
				if next, err = readLine(r, "new password"); err != nil {
					return err
				}
			} else {
				if current, err = a.prompt("Current password: ", "password-stdin"); err != nil {
					return err
				}
				if next, err = a.newPassword(false, "New password: "); err != nil {
					return err
				}
			}
			if err := c.ChangePassword(cmd.Context(), current, next); err != nil {
				return fmt.Errorf("change your password: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Password changed.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the passwords from standard input, one a line")
	return cmd
}

func (a *app) roleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Manage roles and who holds them where",
		Long: `A role is a named set of permissions (docs/rbac.md); a role binding grants a
role to a user over the whole domain, named groups, or the groups whose
labels match a selector.`,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			roles, err := c.ListRoles(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, roles, func(w io.Writer) {
				t := newTable(w, "NAME", "BUILT-IN", "PERMISSIONS", "DESCRIPTION")
				for _, r := range roles {
					t.row(r.Name, strconv.FormatBool(r.BuiltIn), strings.Join(r.Permissions, ","), r.Description)
				}
				t.flush()
			})
		},
	}
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a role",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			r, err := c.GetRole(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printRole(cmd, r)
		},
	}
	var (
		permissions []string
		description string
	)
	create := &cobra.Command{
		Use:     "create NAME --permission P...",
		Short:   "Create a role",
		Example: `  gatehouse role create releaser --permission draft:read --permission deployment:create`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			r, err := c.CreateRole(cmd.Context(), apitypes.Role{Name: args[0], Permissions: permissions, Description: description})
			if err != nil {
				return fmt.Errorf("create role %s: %w", args[0], err)
			}
			return a.printRole(cmd, r)
		},
	}
	create.Flags().StringSliceVar(&permissions, "permission", nil, `permission such as "draft:write" (repeatable, or comma-separated)`)
	create.Flags().StringVar(&description, "description", "", "description")
	_ = create.MarkFlagRequired("permission")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a custom role that no binding uses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteRole(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete role %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted role %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, get, create, del, a.bindCommand(), a.unbindCommand(), a.bindingsCommand())
	return cmd
}

func (a *app) printRole(cmd *cobra.Command, r apitypes.Role) error {
	return a.render(cmd, r, func(w io.Writer) {
		fields(w,
			"Name", r.Name,
			"Built-in", strconv.FormatBool(r.BuiltIn),
			"Permissions", strings.Join(r.Permissions, ","),
			"Description", r.Description)
	})
}

// bindFlags are the flags of `role bind`.
type bindFlags struct {
	user, role string
	domain     bool
	groups     []string
	selector   []string
}

// binding checks the flags and makes the binding they describe: exactly
// one scope, as the API wants, but said in terms of flags.
func (f bindFlags) binding() (apitypes.RoleBinding, error) {
	b := apitypes.RoleBinding{User: f.user, Role: f.role}
	var given []string
	if f.domain {
		b.Scope.Domain = true
		given = append(given, "--domain")
	}
	if len(f.groups) > 0 {
		b.Scope.Groups = f.groups
		given = append(given, "--group")
	}
	if len(f.selector) > 0 {
		var pairs []string
		for _, s := range f.selector {
			pairs = append(pairs, strings.Split(s, ",")...)
		}
		sel, err := parseLabels("selector", pairs)
		if err != nil {
			return b, err
		}
		b.Scope.Selector = sel
		given = append(given, "--selector")
	}
	if len(given) != 1 {
		what := "none"
		if len(given) > 1 {
			what = strings.Join(given, " and ")
		}
		return b, fmt.Errorf("give exactly one scope, --domain, --group or --selector; got %s", what)
	}
	return b, nil
}

func (a *app) bindCommand() *cobra.Command {
	var f bindFlags
	cmd := &cobra.Command{
		Use:   "bind --user U --role R (--domain | --group G... | --selector k=v...)",
		Short: "Grant a role to a user within a scope",
		Long: `Grant a role to a user over the whole domain (--domain), over named groups
(--group, repeatable), or over the groups whose labels match all the pairs
of --selector (repeatable, or comma-separated), including groups created
or labelled later. Exactly one kind of scope is given.`,
		Example: `  gatehouse role bind --user alice --role deployer --group web --group api
  gatehouse role bind --user bob --role viewer --selector env=prod,team=payments`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.binding()
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			b, err = c.CreateBinding(cmd.Context(), b)
			if err != nil {
				return fmt.Errorf("bind role %s to %s: %w", f.role, f.user, err)
			}
			return a.render(cmd, b, func(w io.Writer) {
				fmt.Fprintf(w, "Bound role %s to %s on %s (binding %s).\n", b.Role, b.User, scopeText(b.Scope), b.ID)
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.user, "user", "", "user to grant the role to")
	fs.StringVar(&f.role, "role", "", "role to grant")
	fs.BoolVar(&f.domain, "domain", false, "scope: the whole domain")
	fs.StringArrayVar(&f.groups, "group", nil, "scope: this group (repeatable)")
	fs.StringArrayVar(&f.selector, "selector", nil, "scope: groups with the label k=v (repeatable, or comma-separated)")
	_ = cmd.MarkFlagRequired("user")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func (a *app) unbindCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unbind ID",
		Short: `Remove a role binding (IDs are in "role bindings")`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteBinding(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("remove binding %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed binding %s.\n", args[0])
			return nil
		},
	}
}

func (a *app) bindingsCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "bindings",
		Short: "List role bindings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			bs, err := c.ListBindings(cmd.Context(), user)
			if err != nil {
				return err
			}
			return a.render(cmd, bs, func(w io.Writer) { a.bindingTable(w, bs) })
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only the bindings of this user")
	return cmd
}

func (a *app) bindingTable(w io.Writer, bs []apitypes.RoleBinding) {
	t := newTable(w, "ID", "USER", "ROLE", "SCOPE", "CREATED")
	for _, b := range bs {
		t.row(b.ID, b.User, b.Role, scopeText(b.Scope), a.when(b.CreatedAt))
	}
	t.flush()
}

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens, for scripts and CI",
	}
	var in apitypes.TokenCreate
	var host string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token, or a join token for a host",
		Long: `Create an API token, printing its secret on standard output. The secret is
shown this once and cannot be recovered: store it at once. Without --ttl
the token does not expire. --user creates a token of another user
(user:admin).

With --host, create instead a join token: a single-use token with which the
node manager of that host joins the domain (gatehouse node join), valid for
--ttl (1h by default, at most 168h). The host is created if it does not
exist (host:write).`,
		Example: `  GATEHOUSE_TOKEN=$(gatehouse token create --name ci --ttl 720h)
  gatehouse token create --host web-1 --ttl 1h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if host != "" {
				if in.Name != "" || in.User != "" {
					return errors.New("--host makes a join token: --name and --user do not apply")
				}
				return a.createJoinToken(cmd, host, in.TTL)
			}
			if in.TTL != "" {
				if d, err := time.ParseDuration(in.TTL); err != nil || d <= 0 {
					return fmt.Errorf("--ttl %q: want a positive duration such as 720h", in.TTL)
				}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), in)
			if err != nil {
				return fmt.Errorf("create token: %w", err)
			}
			expires := "never expires"
			if t.ExpiresAt != nil {
				expires = "expires " + a.when(*t.ExpiresAt)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Token %s of %s, %s. Its secret is shown this once only: store it now.\n",
				t.ID, t.User, expires)
			return a.render(cmd, t, func(w io.Writer) { fmt.Fprintln(w, t.Secret) })
		},
	}
	create.Flags().StringVar(&in.Name, "name", "", "what the token is for")
	create.Flags().StringVar(&in.TTL, "ttl", "", "lifetime, e.g. 720h (default: no expiry)")
	create.Flags().StringVar(&in.User, "user", "", "user the token acts as (default: you)")
	create.Flags().StringVar(&host, "host", "", "make a join token for this host's node manager")
	var (
		user string
		all  bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List your tokens, a user's, or everyone's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if all {
				user = client.AllUsers
			}
			ts, err := c.ListTokens(cmd.Context(), user)
			if err != nil {
				return err
			}
			return a.render(cmd, ts, func(w io.Writer) { a.tokenTable(w, ts) })
		},
	}
	list.Flags().StringVar(&user, "user", "", "list this user's tokens (user:admin)")
	list.Flags().BoolVar(&all, "all", false, "list every user's tokens (user:admin)")
	list.MarkFlagsMutuallyExclusive("user", "all")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("revoke token %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked token %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func (a *app) createJoinToken(cmd *cobra.Command, host, ttl string) error {
	c, err := a.connect()
	if err != nil {
		return err
	}
	target, err := a.resolve()
	if err != nil {
		return err
	}
	t, err := c.CreateJoinToken(cmd.Context(), apitypes.JoinTokenCreate{Host: host, TTL: ttl})
	if err != nil {
		return fmt.Errorf("create join token for host %s: %w", host, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Join token for host %s, single use, expires %s. Shown this once; on the host run:\n"+
		"  gatehouse node join --addr %s --token %s --ca-fingerprint %s --data-dir /var/lib/gatehouse/node\n",
		host, a.when(t.ExpiresAt), target.addr, t.Token, t.CAFingerprint)
	return a.render(cmd, t, func(w io.Writer) { fmt.Fprintln(w, t.Token) })
}

func (a *app) tokenTable(w io.Writer, ts []apitypes.Token) {
	t := newTable(w, "ID", "USER", "NAME", "KIND", "CREATED", "EXPIRES", "LAST USED", "REVOKED")
	for _, tok := range ts {
		t.row(tok.ID, tok.User, tok.Name, tok.Kind, a.when(tok.CreatedAt), a.whenPtr(tok.ExpiresAt),
			a.whenPtr(tok.LastUsedAt), strconv.FormatBool(tok.Revoked))
	}
	t.flush()
}
