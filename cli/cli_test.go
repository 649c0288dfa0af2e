package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// testTime is the clock of the tests.
var testTime = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// testEnv is an environment of variables vars, standard input stdin and
// no terminal; times print in UTC.
func testEnv(vars map[string]string, stdin string) env {
	return env{
		getenv: func(k string) string { return vars[k] },
		stdin:  strings.NewReader(stdin),
		readPassword: func(string) (string, error) {
			return "", errNoTerminal
		},
		now: func() time.Time { return testTime },
		loc: time.UTC,
	}
}

// run runs the CLI with args under a root command like the binary's.
func run(t *testing.T, e env, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "gatehouse", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newApp(e).commands()...)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// Arguments are checked before anything is sent: none of these commands
// could connect (there is no address), so each error is the argument's.
func TestArgumentErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"role", "bind", "--user", "u", "--role", "r", "--domain", "--group", "web"},
			"give exactly one scope, --domain, --group or --selector; got --domain and --group"},
		{[]string{"role", "bind", "--user", "u", "--role", "r"},
			"give exactly one scope, --domain, --group or --selector; got none"},
		{[]string{"role", "bind", "--user", "u", "--role", "r", "--selector", "env"}, `--selector "env": want key=value`},
		{[]string{"role", "bind", "--role", "r", "--domain"}, `required flag(s) "user" not set`},
		{[]string{"group", "list", "-o", "xml"}, `unknown output format "xml": want table, json or yaml`},
		{[]string{"group", "create", "web", "--label", "prod"}, `--label "prod": want key=value`},
		{[]string{"group", "get"}, "accepts 1 arg(s), received 0"},
		{[]string{"token", "list", "--user", "u", "--all"}, "[all user] were all set"},
		{[]string{"token", "create", "--ttl", "30d"}, `--ttl "30d": want a positive duration`},
		{[]string{"diff", "--group", "web", "3", "newest"}, `deployment "newest": want a number or "latest"`},
		{[]string{"diff", "--group", "web", "1", "2", "3"}, "accepts at most 2 arg(s)"},
		{[]string{"deploy", "--group", "web"}, `required flag(s) "message" not set`},
		{[]string{"rollback", "--group", "web", "-m", "x"}, `required flag(s) "to" not set`},
		{[]string{"config", "apply", "--group", "web"}, `required flag(s) "file" not set`},
		{[]string{"audit", "--since", "yesterday"}, `--since "yesterday": want an RFC 3339 time`},
		{[]string{"login", "--ca-cert", "ca.pem", "--ca-fingerprint", "SHA256:00"}, "give --ca-cert or --ca-fingerprint, not both"},
		{[]string{"env", "set", "prod"}, "nothing to set: give NAME=value arguments or -f FILE"},
		{[]string{"env", "set", "prod", "A=1", "FOO"}, `"FOO": want NAME=value`},
		{[]string{"env", "set", "prod", "=1"}, `"=1": want NAME=value`},
		{[]string{"env", "set", "prod", "-f", "/nonexistent/prod.env"}, "open /nonexistent/prod.env: no such file or directory"},
		{[]string{"env", "unset", "prod"}, "requires at least 2 arg(s)"},
		{[]string{"env", "secret", "set", "prod", "A", "hunter2"}, "accepts 2 arg(s), received 3"},
		{[]string{"trust", "add", "dev"}, `required flag(s) "key" not set`},
		{[]string{"trust", "add", "dev", "--key", "AAAA"}, `--key: parse public key: must start with "ed25519:"`},
		{[]string{"group", "list"}, "no admin node address"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			vars := map[string]string{envConfig: t.TempDir() + "/cli.json"}
			_, _, err := run(t, testEnv(vars, ""), tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	a := newApp(testEnv(nil, ""))
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"1h", testTime.Add(-time.Hour)},
		{"90m", testTime.Add(-90 * time.Minute)},
		{"2026-03-01T12:00:00+01:00", time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)},
	} {
		got, err := a.parseTime("since", tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
