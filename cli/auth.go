package cli

import (
	"bufio"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

func (a *app) loginCommand() *cobra.Command {
	var (
		user          string
		passwordStdin bool
		fingerprint   string
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to an admin node and save the token",
		Long: `Log in to an admin node with a user's password and save the address, the
login token, the user and the trusted CA certificate to the CLI configuration
file ($GATEHOUSE_CONFIG, else $XDG_CONFIG_HOME/gatehouse/cli.json, else
~/.config/gatehouse/cli.json; mode 0600). Later commands use them unless
flags or the environment say otherwise.

The admin node's certificate comes from the domain's own CA. Trust it the
first time with --ca-fingerprint, the fingerprint "gatehouse admin init"
printed: the CA certificate the server presents is checked against it and
then saved, so later commands trust that certificate. Or give the CA
certificate itself with --ca-cert. Without either, a CA saved by an earlier
login to the same address is used, else the system roots.

Several admin nodes of one domain are given as one --addr, separated by
commas: the list is saved, and every command sticks to one of them and moves
to the next when it cannot connect or gets a 5xx (docs/cli.md).

The password is asked for on the terminal, or read from the first line of
standard input with --password-stdin. The server is verified before the
password is asked for.`,
		Example: `  gatehouse login --addr https://admin.example.com:8090 --ca-fingerprint SHA256:3f1c…e09a
  echo "$PASSWORD" | gatehouse login --addr admin.example.com:8090 --user alice --password-stdin
  gatehouse login --addr https://admin-a.example.com:8090,https://admin-b.example.com:8090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fingerprint != "" && a.caCert != "" {
				return errors.New("give --ca-cert or --ca-fingerprint, not both")
			}
			saved, path, err := a.loadLogin()
			if err != nil {
				return err
			}
			addr := first(a.addr, a.getenv(envAddr), saved.Address)
			if addr == "" {
				return fmt.Errorf("no admin node address: use --addr or $%s", envAddr)
			}
			same := savedFor(addr, saved.Address)
			if user == "" {
				user = "admin"
				if same && saved.User != "" {
					user = saved.User
				}
			}
			cfg := client.Config{Address: addr}
			switch caFile := first(a.caCert, a.getenv(envCACert)); {
			case fingerprint != "":
				cfg.CAFingerprint = fingerprint
			case caFile != "":
				if cfg.CACertPEM, err = os.ReadFile(caFile); err != nil {
					return fmt.Errorf("read the CA certificate: %w", err)
				}
			case same && saved.CACert != "":
				cfg.CACertPEM = []byte(saved.CACert)
			}
			c, err := client.New(cfg)
			if err != nil {
				return err
			}
			health, err := c.Health(cmd.Context())
			var unknownCA x509.UnknownAuthorityError
			if errors.As(err, &unknownCA) {
				return fmt.Errorf("connect to %s: %w\nGive the domain CA with --ca-cert, or its fingerprint (printed by `gatehouse admin init`) with --ca-fingerprint", addr, err)
			}
			if err != nil {
				return fmt.Errorf("connect to %s: %w", addr, err)
			}
			password, err := a.password(passwordStdin, fmt.Sprintf("Password for %s at %s: ", user, addr))
			if err != nil {
				return err
			}
			resp, err := c.Login(cmd.Context(), user, password)
			if err != nil {
				return fmt.Errorf("log in as %s: %w", user, err)
			}
			l := savedLogin{Address: addr, User: resp.User, Token: resp.Token}
			if cfg.CAFingerprint != "" || cfg.CACertPEM != nil {
				caPEM, err := c.ServerCA(cmd.Context())
				if err != nil {
					return err
				}
				l.CACert = string(caPEM)
			}
			if err := saveLogin(path, l); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to domain %s at %s as %s until %s.\nSaved to %s.\n",
				health.Domain, addr, resp.User, a.when(resp.ExpiresAt), path)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&user, "user", "", "user to log in as (default: the saved user of this address, else admin)")
	fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	fs.StringVar(&fingerprint, "ca-fingerprint", "", `fingerprint of the domain CA to pin, "SHA256:<hex>"`)
	return cmd
}

// password reads a password from stdin or the terminal.
func (a *app) password(fromStdin bool, prompt string) (string, error) {
	if !fromStdin {
		return a.prompt(prompt, "password-stdin")
	}
	return readLine(bufio.NewReader(a.stdin), "password")
}

// readLine reads one line of r without its line break, for passwords
// piped in.
func readLine(r *bufio.Reader, what string) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the %s from standard input: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no %s on standard input", what)
	}
	return line, nil
}

// newPassword asks for a new password twice on the terminal, or reads it
// once from stdin.
func (a *app) newPassword(fromStdin bool, prompt string) (string, error) {
	if fromStdin {
		return a.password(true, "")
	}
	p, err := a.prompt(prompt, "password-stdin")
	if err != nil {
		return "", err
	}
	again, err := a.prompt("Again: ", "password-stdin")
	if err != nil {
		return "", err
	}
	if p != again {
		return "", errors.New("the passwords differ")
	}
	return p, nil
}

func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the token and forget it",
		Long: `Revoke the token in use on the admin node and remove it from the CLI
configuration file, keeping the address and CA for the next login. A token
that had already expired or been revoked is removed all the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.resolve()
			if err != nil {
				return err
			}
			if t.token == "" {
				return errors.New("not logged in")
			}
			c, err := client.New(client.Config{Address: t.addr, Token: t.token, CACertPEM: t.caPEM})
			if err != nil {
				return err
			}
			if err := c.Logout(cmd.Context()); err != nil && !client.IsStatus(err, http.StatusUnauthorized) {
				return fmt.Errorf("log out: %w", err)
			}
			saved, path, err := a.loadLogin()
			if err != nil {
				return err
			}
			if saved.Token != "" && saved.Token == t.token {
				saved.Token = ""
				if err := saveLogin(path, saved); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s.\n", t.addr)
			return nil
		},
	}
}

func (a *app) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the user of the token and what it may do",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			w, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(cmd, w, func(out io.Writer) {
				fields(out,
					"User", w.User,
					"Token", w.TokenID,
					"Expires", a.whenPtr(w.ExpiresAt),
					"Domain permissions", strings.Join(w.Permissions, ","))
				if len(w.Bindings) > 0 {
					fmt.Fprintln(out)
					a.bindingTable(out, w.Bindings)
				}
			})
		},
	}
}

// scopeText prints a binding's scope as its flags are written.
func scopeText(s apitypes.Scope) string {
	switch {
	case s.Domain:
		return "domain"
	case len(s.Groups) > 0:
		return "groups " + strings.Join(s.Groups, ",")
	case len(s.Selector) > 0:
		return "selector " + labels(s.Selector)
	}
	return ""
}
