package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/adminnode/client"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// Commands returns the top-level commands of the CLI, for the root
// command of the binary.
func Commands() []*cobra.Command {
	return newApp(processEnv()).commands()
}

// env is what the commands take from the process, so that tests can
// replace it.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	// readPassword prompts on stderr and reads a line without echo; it
	// fails with errNoTerminal when stdin is not a terminal.
	readPassword func(prompt string) (string, error)
	now          func() time.Time
	// loc is the zone times are printed in.
	loc *time.Location
}

func processEnv() env {
	return env{
		getenv: os.Getenv,
		stdin:  os.Stdin,
		readPassword: func(prompt string) (string, error) {
			fd := int(os.Stdin.Fd())
			if !term.IsTerminal(fd) {
				return "", errNoTerminal
			}
			fmt.Fprint(os.Stderr, prompt)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(os.Stderr)
			if err != nil {
				return "", fmt.Errorf("read password: %w", err)
			}
			return string(b), nil
		},
		now: time.Now,
		loc: time.Local,
	}
}

// errNoTerminal is readPassword's error when standard input is not a
// terminal; prompt adds the flag that reads standard input instead.
var errNoTerminal = errors.New("standard input is not a terminal to prompt on")

// prompt reads a line without echo on the terminal (passwords, secrets);
// without a terminal, its error names flag, the way to pipe the value in.
func (a *app) prompt(prompt, flag string) (string, error) {
	s, err := a.readPassword(prompt)
	if errors.Is(err, errNoTerminal) {
		return "", fmt.Errorf("%w: use --%s", err, flag)
	}
	return s, err
}

// app holds what the commands share: the environment and the global
// flags, which every top-level command declares and binds to the same
// fields (only one command runs).
type app struct {
	env
	addr   string
	token  string
	caCert string
	output string
}

func newApp(e env) *app { return &app{env: e} }

func (a *app) commands() []*cobra.Command {
	cmds := []*cobra.Command{
		a.loginCommand(), a.logoutCommand(), a.whoamiCommand(),
		a.statusCommand(),
		a.groupCommand(), a.hostCommand(), a.instanceCommand(),
		a.configCommand(), a.deployCommand(), a.deploymentsCommand(), a.diffCommand(), a.rollbackCommand(),
		a.userCommand(), a.roleCommand(), a.tokenCommand(), a.auditCommand(),
		a.metricsCommand(), a.topCommand(),
		a.envCommand(), a.trustCommand(), a.domainCommand(), a.publishKeyCommand(), a.settingsCommand(), a.caCommand(),
		a.exportCommand(), a.importCommand(), a.promoteCommand(), a.releaseCommand(),
	}
	for _, cmd := range cmds {
		a.globalFlags(cmd)
	}
	return cmds
}

// AdminBackupCommand returns gatehouse admin backup, a client of the admin
// API like the top-level commands, with their flags.
func AdminBackupCommand() *cobra.Command {
	a := newApp(processEnv())
	cmd := a.backupCommand()
	a.globalFlags(cmd)
	return cmd
}

// globalFlags gives cmd the flags every client command has.
func (a *app) globalFlags(cmd *cobra.Command) {
	cmd.SetGlobalNormalizationFunc(NormalizeFlag)
	withHints(cmd)
	fs := cmd.PersistentFlags()
	fs.StringVar(&a.addr, "addr", "", "admin node address, https://host:port, or several separated by commas (default $GATEHOUSE_ADDR, then the saved login)")
	fs.StringVar(&a.token, "token", "", "API token (default $GATEHOUSE_TOKEN, then the saved login)")
	fs.StringVar(&a.caCert, "ca-cert", "", "PEM file of the domain CA to trust (default $GATEHOUSE_CACERT, then the saved login)")
	// A command whose output is a file (export) has its own -o.
	if cmd.Flags().Lookup("output") == nil {
		fs.StringVarP(&a.output, "output", "o", outputTable, "output format: table, json or yaml")
	}
	// Checked before the command runs, so that a typo in -o does
	// not come to light after a deployment was made.
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if a.output != outputTable && a.output != outputJSON && a.output != outputYAML {
			return fmt.Errorf("unknown output format %q: want table, json or yaml", a.output)
		}
		return nil
	}
}

// connect returns a client for the admin node the flags, environment and
// saved login designate, with their token.
func (a *app) connect() (*client.Client, error) { return a.connectFor(0) }

// connectFor is connect with timeout bounding each request instead of
// client.DefaultTimeout (0): for a request whose answer is long to
// stream, like a backup.
func (a *app) connectFor(timeout time.Duration) (*client.Client, error) {
	t, err := a.resolve()
	if err != nil {
		return nil, err
	}
	if t.token == "" {
		return nil, errors.New("not logged in: run `gatehouse login`, or give a token with --token or $GATEHOUSE_TOKEN")
	}
	return client.New(client.Config{Address: t.addr, Token: t.token, CACertPEM: t.caPEM, Timeout: timeout})
}
