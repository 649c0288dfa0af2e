package cli

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitest"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
)

func TestParseEnvFile(t *testing.T) {
	data := "# prod settings\r\n\nORDERS_UPSTREAM=10.0.0.5:8080\r\n  API_HOST = api.example.com  \n" +
		"GREETING=\"hello world\"\nQUOTED='it''s'\nEMPTY=\nEQUALS=a=b\nHALF=\"open\n" +
		"COMMENTED=x # the x\nHASH=a#b\nQHASH=' # kept ' # dropped\n"
	got, err := parseEnvFile("prod.env", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ORDERS_UPSTREAM": "10.0.0.5:8080", "API_HOST": "api.example.com", "GREETING": "hello world",
		"QUOTED": "it''s", "EMPTY": "", "EQUALS": "a=b", "HALF": `"open`,
		"COMMENTED": "x", "HASH": "a#b", "QHASH": " # kept "}
	if !maps.Equal(got, want) {
		t.Errorf("parsed %v\nwant %v", got, want)
	}
	for _, tt := range []struct{ data, want string }{
		{"A=1\nnot an assignment\n", `prod.env:2: "not an assignment": want NAME=value`},
		{"A=1\n# B=2\nA=3\n", "prod.env:3: A is already set on line 1"},
		{" =1\n", `prod.env:1: "=1": want NAME=value`},
		{"A='1' 2\n", `prod.env:1: A: "'1' 2": text after the closing quote (a comment starts with " #")`},
	} {
		if _, err := parseEnvFile("prod.env", []byte(tt.data)); err == nil || err.Error() != tt.want {
			t.Errorf("%q: error %v, want %q", tt.data, err, tt.want)
		}
	}
}

// TestParseEnvFileOfTheDocs parses the env file that docs/cli.md shows,
// read from the page, so that the page and the parser cannot drift apart.
func TestParseEnvFileOfTheDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```sh\n# uat.env\n")
	if !ok {
		t.Fatal("docs/cli.md shows no env file (a sh block starting with \"# uat.env\")")
	}
	block, _, _ = strings.Cut(block, "```")
	got, err := parseEnvFile("uat.env", []byte(block))
	if err != nil {
		t.Fatalf("the env file of docs/cli.md: %v\n%s", err, block)
	}
	want := map[string]string{"ORDERS_UPSTREAM": "10.1.0.5:8080", "API_HOST": "uat.example.com"}
	if !maps.Equal(got, want) {
		t.Errorf("the env file of docs/cli.md parses as %q, want %q (what the page says of it)\n%s", got, want, block)
	}
}

// TestSettingsFlow drives env, trust and domain against the real API.
func TestSettingsFlow(t *testing.T) {
	hs, root := apitest.AdminNode(t)
	dir := t.TempDir()
	vars := map[string]string{envConfig: filepath.Join(dir, "cli.json")}
	var transcript strings.Builder
	step := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := run(t, testEnv(vars, stdin), args...)
		transcript.WriteString(out + errOut)
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	fail := func(stdin, want string, args ...string) {
		t.Helper()
		out, errOut, err := run(t, testEnv(vars, stdin), args...)
		transcript.WriteString(out + errOut)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("gatehouse %s: error %v, want %q\n%s%s", strings.Join(args, " "), err, want, out, errOut)
		}
		transcript.WriteString(err.Error())
	}
	step(adminPassword+"\n", "login", "--addr", hs.URL, "--ca-fingerprint", root.Fingerprint(), "--password-stdin")

	file := filepath.Join(dir, "prod.env")
	writeFile(t, file, "# prod\nORDERS_UPSTREAM=10.0.0.5:8080\nAPI_HOST=api.example.com\n")
	if out := step("", "env", "set", "prod", "-f", file, "API_HOST=api.example.org", "TIMEOUT=5s"); out != "Set API_HOST, ORDERS_UPSTREAM, TIMEOUT in environment prod (version 1).\n" {
		t.Errorf("env set said %q", out)
	}
	fail("", `set.order_host: must be upper-case letters, digits and "_", starting with a letter`, "env", "set", "prod", "order_host=x")
	if out := step("", "env", "unset", "prod", "TIMEOUT"); out != "Unset TIMEOUT in environment prod (version 2).\n" {
		t.Errorf("env unset said %q", out)
	}
	fail("", "environment \"prod\" has no value NOPE: nothing was changed", "env", "unset", "prod", "NOPE", "API_HOST")

	// Secrets: from standard input, never from a terminal the tests do
	// not have, and never shown.
	const secret = "correct-horse-battery-staple-42"
	if out := step(secret+"\n", "env", "secret", "set", "prod", "DB_PASSWORD", "--value-stdin"); out != "Set secret DB_PASSWORD of environment prod.\n" {
		t.Errorf("secret set said %q", out)
	}
	fail("", "standard input is not a terminal to prompt on: use --value-stdin", "env", "secret", "set", "prod", "API_KEY")
	fail("\n", "no value on standard input", "env", "secret", "set", "prod", "API_KEY", "--value-stdin")
	out := step("", "env", "secret", "list", "prod")
	if !strings.Contains(out, "SECRET") || !strings.Contains(out, "DB_PASSWORD") || !strings.Contains(out, " ok") {
		t.Errorf("secret list said %q", out)
	}

	out = step("", "env", "get", "prod")
	for _, want := range []string{"Name:", "prod", "ORDERS_UPSTREAM  10.0.0.5:8080", "API_HOST         api.example.org", "DB_PASSWORD"} {
		if !strings.Contains(out, want) {
			t.Errorf("env get lacks %q:\n%s", want, out)
		}
	}
	var env apitypes.Environment
	if err := json.Unmarshal([]byte(step("", "env", "get", "prod", "-o", "json")), &env); err != nil ||
		!maps.Equal(env.Values, map[string]string{"ORDERS_UPSTREAM": "10.0.0.5:8080", "API_HOST": "api.example.org"}) || len(env.Secrets) != 1 {
		t.Errorf("env get -o json: %+v, %v", env, err)
	}
	lines := strings.Split(strings.TrimSpace(step("", "env", "list")), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME VALUES SECRETS UPDATED BY" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "prod 2 1 ") || !strings.HasSuffix(lines[1], "admin") {
		t.Errorf("env list said %q", lines)
	}
	step("", "env", "secret", "unset", "prod", "DB_PASSWORD")
	fail("", "not_found", "env", "secret", "unset", "prod", "DB_PASSWORD")
	// An environment with a secret is deleted with it.
	step("another-value\n", "env", "secret", "set", "prod", "DB_PASSWORD", "--value-stdin")
	if out := step("", "env", "delete", "prod"); out != "Deleted environment prod.\n" {
		t.Errorf("env delete said %q", out)
	}
	fail("", "not_found", "env", "get", "prod")

	// This domain's key, and other domains trusted.
	out = step("", "domain", "key")
	key := strings.TrimSpace(out)
	if _, err := deploy.ParsePublicKey(key); err != nil {
		t.Fatalf("domain key printed %q: %v", out, err)
	}
	fail("", `is this domain`, "trust", "add", "test", "--key", key)
	if out := step("", "trust", "add", "dev", "--key", key); !strings.HasPrefix(out, "Trusting the packages of domain dev signed by SHA256:") {
		t.Errorf("trust add said %q", out)
	}
	step("", "trust", "add", "dev", "--key", key) // the same key again
	pub, _, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	other := deploy.EncodePublicKey(pub)
	fail("", "domain dev is already trusted with key SHA256:", "trust", "add", "dev", "--key", other)
	step("", "trust", "add", "dev", "--key", other, "--replace")
	if out := step("", "trust", "list"); !strings.Contains(out, "dev") || !strings.Contains(out, deploy.KeyFingerprint(pub)) {
		t.Errorf("trust list said %q", out)
	}
	if out := step("", "trust", "remove", "dev"); out != "No longer trusting domain dev.\n" {
		t.Errorf("trust remove said %q", out)
	}
	fail("", "not_found", "trust", "remove", "dev")

	if strings.Contains(transcript.String(), secret) {
		t.Errorf("the secret was printed:\n%s", transcript.String())
	}
}
