package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// docPages are the pages whose marked blocks TestDocs runs, in this
// order, against one `gatehouse dev` domain; paths from the repository's
// root. Every page of docs/ is here or in docProse.
var docPages = []string{
	"README.md", "docs/cli.md", "docs/admin-node.md", "docs/node-manager.md", "docs/gateway.md",
	"docs/configuration.md", "docs/policies.md", "docs/policies/auth.md", "docs/policies/external.md",
	"docs/policies/http-log.md", "docs/policies/rate-limit.md", "docs/policies/transform.md",
	"docs/deployments.md", "docs/promotion.md", "docs/metrics.md", "docs/rbac.md", "docs/admin-api.md",
	"docs/object-storage.md", "docs/console.md",
}

// docProse are the pages with nothing a reader types, and why.
var docProse = map[string]string{
	"docs/pki.md": "its commands rotate the domain CA under a running node manager: " +
		"e2e/certs_test.go runs them (TestCARotationNoRejoin)",
	"docs/gossip.md": "its only commands are benchmarks, minutes long, some needing nginx",
	"docs/upgrades.md": "its commands need two builds of the binary, a node manager and minutes: " +
		"e2e/upgrade_test.go runs them (TestRollingUpgradeWithoutDowntime, TestRollingUpgradeRollsBack, TestRollingUpgradePauses)",
	"docs/backups.md": "its commands stop, restore and restart admin nodes, on other machines and databases: " +
		"e2e/backup_test.go runs them (TestBackupRestoreWhileWritten, TestRestoreOlderBackupNumbersAbove)",
}

// The marks a page puts on its fenced blocks, each an HTML comment (which
// renders as nothing) on the last non-blank line before the fence:
//
//	<!-- run -->         run the block in bash with set -e; it must succeed
//	<!-- run fails -->   the same, but it must fail (exit non-zero)
//	<!-- run alone -->   run it with no domain (before gatehouse dev starts)
//	                     and the addresses as written, gatehouse on PATH:
//	                     for what runs on its own, like a standalone gateway
//	                     (<!-- run alone fails --> for both)
//	<!-- output -->      what the run block before it prints (stdout and
//	                     stderr): "…" in a line stands for any text, a line
//	                     that is "…" alone for any number of lines
//	<!-- file NAME -->   the block is the file NAME, written into the page's
//	                     working directory before any block runs
//	<!-- validate -->    the block is a whole configuration: gatehouse
//	                     validate must accept it (run with no domain, as
//	                     a run alone block; <!-- validate fails --> for a
//	                     configuration shown as wrong, with its errors in
//	                     an output block)
//	<!-- validate service -->  the block is what a service holds besides
//	                     its name and upstream (routes, policies): validated
//	                     in a configuration with upstreams orders and
//	                     orders-canary, service orders, and a route if the
//	                     block has none
//
// and, for what a reader need not see, a comment of its own:
//
//	<!-- setup
//	commands, run as a run block there
//	-->
//
// Unmarked blocks are prose: fragments, placeholders, other machines.
const docMarkPrefix = "<!-- "

// docBlock is a marked block of a page.
type docBlock struct {
	line   int    // of the opening fence (or of the setup comment)
	kind   string // "run", "setup", "file"
	fails  bool   // run fails
	alone  bool   // run alone
	name   string // file name
	text   string
	output *docOutput // expected output of a run block
}

type docOutput struct {
	line int
	text string
}

// parseDocBlocks returns the marked blocks of a page, in order.
func parseDocBlocks(page string) ([]docBlock, error) {
	lines := strings.Split(page, "\n")
	var blocks []docBlock
	mark, markLine := "", 0
	lastRun := -1
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(line, "<!-- setup") && !strings.HasSuffix(line, "-->"):
			start := i + 1
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "-->"; i++ {
			}
			if i == len(lines) {
				return nil, fmt.Errorf("line %d: setup comment never closed", start)
			}
			blocks = append(blocks, docBlock{line: start, kind: "setup", text: strings.Join(lines[start:i], "\n") + "\n"})
			// An output block shows what its run block printed; hidden
			// commands between them would make it show something else.
			lastRun = -1
			mark = ""
		case strings.HasPrefix(line, docMarkPrefix) && strings.HasSuffix(line, "-->"):
			words := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(line, docMarkPrefix), "-->"))
			if len(words) > 0 && slices.Contains([]string{"run", "output", "file", "validate"}, words[0]) {
				mark, markLine = strings.Join(words, " "), i+1
			}
		case strings.HasPrefix(line, "```"):
			start := i + 1
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
			}
			if i == len(lines) {
				return nil, fmt.Errorf("line %d: code block never closed", start)
			}
			text := strings.Join(lines[start:i], "\n") + "\n"
			if mark == "" {
				continue
			}
			words := strings.Fields(mark)
			b := docBlock{line: start, kind: words[0], text: text}
			switch {
			case words[0] == "run" && runOptions(&b, words[1:]):
			case words[0] == "validate" && (len(words) == 1 || len(words) == 2 && words[1] == "fails"):
				b.kind, b.alone, b.fails = "run", true, len(words) == 2
				b.text = validateScript(text)
			case mark == "validate service":
				b.kind, b.alone = "run", true
				b.text = validateScript(inService(text))
			case mark == "output":
				if lastRun < 0 || blocks[lastRun].output != nil {
					return nil, fmt.Errorf("line %d: output block with no run block before it to be the output of", markLine)
				}
				blocks[lastRun].output = &docOutput{line: start, text: text}
				mark = ""
				continue
			case words[0] == "file" && len(words) == 2:
				b.name = words[1]
			default:
				return nil, fmt.Errorf("line %d: unknown mark %q", markLine, mark)
			}
			blocks = append(blocks, b)
			if b.kind == "run" {
				lastRun = len(blocks) - 1
			}
			mark = ""
		case line != "" && mark != "":
			return nil, fmt.Errorf("line %d: mark %q is not right before a code block", markLine, mark)
		}
	}
	if mark != "" {
		return nil, fmt.Errorf("line %d: mark %q before no code block", markLine, mark)
	}
	return blocks, nil
}

// validateScript is the run block checking config with gatehouse validate,
// written to a file as a reader saves the page's example.
func validateScript(config string) string {
	const eof = "GATEHOUSE_DOC_CONFIG_EOF"
	return "cat > config.yaml <<'" + eof + "'\n" + config + eof + "\ngatehouse validate config.yaml\n"
}

// inService makes a whole configuration of the body of a service, as a
// reader puts a page's fragment in place.
func inService(body string) string {
	var b strings.Builder
	b.WriteString("upstreams:\n  - {name: orders, targets: [{address: 127.0.0.1:9001}]}\n" +
		"  - {name: orders-canary, targets: [{address: 127.0.0.1:9002}]}\n" +
		"services:\n  - name: orders\n    upstream: orders\n")
	if !regexp.MustCompile(`(?m)^routes:`).MatchString(body) {
		b.WriteString("    routes: [{name: orders-api, paths: [/api/*]}]\n")
	}
	for _, line := range strings.SplitAfter(body, "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("    ")
		}
		b.WriteString(line)
	}
	return b.String()
}

// runOptions sets the options of a run mark, false for a word that is
// none.
func runOptions(b *docBlock, words []string) bool {
	for _, w := range words {
		switch w {
		case "fails":
			b.fails = true
		case "alone":
			b.alone = true
		default:
			return false
		}
	}
	return true
}

// outputMatches reports whether got is what a page shows as want: line by
// line, trailing spaces and blank lines aside, "…" in a line matching any
// text and a line that is "…" alone any number of lines.
func outputMatches(want, got string) bool {
	split := func(s string) []string {
		lines := strings.Split(strings.TrimRight(s, " \t\n"), "\n")
		for i := range lines {
			lines[i] = strings.TrimRight(lines[i], " \t")
		}
		return lines
	}
	return linesMatch(split(want), split(got))
}

func linesMatch(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "…" {
		for skip := 0; skip <= len(got); skip++ {
			if linesMatch(want[1:], got[skip:]) {
				return true
			}
		}
		return false
	}
	if len(got) == 0 || !lineMatches(want[0], got[0]) {
		return false
	}
	return linesMatch(want[1:], got[1:])
}

func lineMatches(want, got string) bool {
	parts := strings.Split(want, "…")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}

// docDomain is the `gatehouse dev` domain the pages run against.
type docDomain struct {
	dir, envFile string
	// addrs maps each address the pages show (the README's ports) to the
	// one the test has: chosen by the system, or held for the test.
	addrs map[string]string
}

// docDevAddrs are the keys of dev's ready file, by the address the pages
// show for each.
var docDevAddrs = map[string]string{
	"127.0.0.1:8090": "admin_listen", "127.0.0.1:8091": "node_listen", "127.0.0.1:9001": "upstream_listen",
	"127.0.0.1:8080": "demo-1_listen", "127.0.0.1:8085": "demo-1_status_listen",
	"127.0.0.1:8081": "demo-2_listen", "127.0.0.1:8086": "demo-2_status_listen",
}

// startDocDomain runs `gatehouse dev` in a temporary directory on ports
// chosen by the system, which the pages' addresses are rewritten to.
func startDocDomain(t *testing.T) *docDomain {
	t.Helper()
	d := &docDomain{dir: t.TempDir(), addrs: map[string]string{}}
	d.envFile = filepath.Join(d.dir, "dev.env")
	gw := &gatewayPids{pids: map[int]bool{}, nodeDir: filepath.Join(d.dir, "node")}
	t.Cleanup(gw.killAll)
	ready := filepath.Join(t.TempDir(), "ready.json")
	args := []string{"dev", "--dir", d.dir,
		"--admin-listen", "127.0.0.1:0", "--node-listen", "127.0.0.1:0", "--upstream-listen", "127.0.0.1:0",
		"--gateway-listen", "127.0.0.1:0,127.0.0.1:0", "--gateway-status-listen", "127.0.0.1:0,127.0.0.1:0",
		"--gateway-gossip-listen", "127.0.0.1:0,127.0.0.1:0", "--ready-file", ready}
	dev := start(t, args...)
	t.Cleanup(func() {
		dev.signal(syscall.SIGINT)
		dev.exit(t, 30*time.Second)
	})
	dev.waitFor(t, 60*time.Second, "the dev domain's usage text", func() bool {
		return strings.Contains(dev.out.String(), "Ctrl-C stops everything")
	})
	var got map[string]string
	dev.waitFor(t, 30*time.Second, "dev's ready file", func() bool {
		data, err := os.ReadFile(ready)
		return err == nil && json.Unmarshal(data, &got) == nil
	})
	for shown, key := range docDevAddrs {
		if got[key] == "" {
			t.Fatalf("dev's ready file has no %s: %v", key, got)
		}
		d.addrs[shown] = got[key]
	}
	// The pages start once the domain serves, as a reader starts once
	// `make run` has printed its banner and the gateways answer.
	env := devEnv(t, d.envFile)
	until(t, "group demo with 2 Healthy instances", func() (bool, string) {
		var s apitypes.GroupSummary
		data := devCLI(t, env, "group", "summary", "demo", "-o", "json")
		if err := json.Unmarshal(data, &s); err != nil {
			return false, err.Error()
		}
		return s.Instances == 2 && s.ByStatus["Healthy"] == 2 && s.Complete, string(data)
	})
	for _, shown := range []string{"127.0.0.1:8080", "127.0.0.1:8081"} {
		until(t, "the demo upstream through "+shown, func() (bool, string) {
			resp, err := noKeepAlive.Get("http://" + d.addrs[shown] + "/orders/42")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status
		})
	}
	return d
}

// rewrite puts the domain's real addresses and directory in place of
// those a page shows.
func (d *docDomain) rewrite(s string) string {
	for shown, real := range d.addrs {
		s = strings.ReplaceAll(s, shown, real)
	}
	if d.dir == "" {
		return s
	}
	return strings.ReplaceAll(s, "/tmp/gatehouse-dev-*", d.dir)
}

// unrewrite is rewrite backwards, for output compared with a page's.
func (d *docDomain) unrewrite(s string) string {
	for shown, real := range d.addrs {
		s = strings.ReplaceAll(s, real, shown)
	}
	if d.dir == "" {
		return s
	}
	return strings.ReplaceAll(s, d.dir, "/tmp/gatehouse-dev-*")
}

// docEditor is $EDITOR for the pages' "$EDITOR demo.yaml": it adds a route,
// as a reader would.
const docEditor = `#!/bin/sh
set -e
grep -q '^    routes:$' "$1" || { echo "docs editor: no routes to add one to in $1" >&2; exit 1; }
sed -i 's|^    routes:$|    routes:\n      - name: edited\n        paths: [/edited]|' "$1"
`

// TestDocs runs the marked blocks of the README and of docs/ against a
// real domain, as a reader types them: each in a fresh bash (set -e,
// pipefail) in the page's own working directory, with dev.env sourced
// except in the README, whose quickstart does it itself. A block that
// fails, or whose output differs from what the page shows, fails the test
// with the page and line.
func TestDocs(t *testing.T) {
	type page struct {
		path   string
		blocks []docBlock
	}
	var pages []page
	all, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		p = strings.TrimPrefix(p, "../")
		if !slices.Contains(docPages, p) && docProse[p] == "" {
			t.Errorf("%s: in neither docPages nor docProse: mark what a reader types, or say why nothing", p)
		}
	}
	for _, p := range docPages {
		data, err := os.ReadFile(filepath.Join("..", p))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := parseDocBlocks(string(data))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		runs := 0
		for _, b := range blocks {
			if b.kind == "run" {
				runs++
			}
		}
		if runs == 0 {
			t.Fatalf("%s: no block marked <!-- run --> or <!-- validate -->", p)
		}
		pages = append(pages, page{p, blocks})
	}
	// What the pages use besides gatehouse, which a reader has or
	// installs first.
	for _, tool := range []string{"bash", "curl", "envsubst", "sed", "grep", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the docs use %s, which this machine lacks", tool)
		}
	}
	tools := t.TempDir()
	if err := os.WriteFile(filepath.Join(tools, "editor"), []byte(docEditor), 0o755); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	// A reader's shell: gatehouse is on PATH once dev.env is sourced, or
	// for blocks that run alone, as the quickstart says to put it there.
	base := []string{"HOME=" + home, "EDITOR=" + filepath.Join(tools, "editor"), "LANG=C.UTF-8", "TERM=dumb"}
	env := append(slices.Clone(base), "PATH=/usr/local/bin:/usr/bin:/bin")
	aloneEnv := append(slices.Clone(base), "PATH="+filepath.Dir(binary)+":/usr/local/bin:/usr/bin:/bin")
	works := map[string]string{}
	for _, p := range pages {
		work := filepath.Join(t.TempDir(), strings.NewReplacer("/", "_", ".", "_").Replace(p.path))
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		works[p.path] = work
	}
	writeFiles := func(d *docDomain) {
		for _, p := range pages {
			for _, b := range p.blocks {
				if b.kind == "file" {
					if err := os.WriteFile(filepath.Join(works[p.path], b.name), []byte(d.rewrite(b.text)), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	check := func(where string, b docBlock, out string, err error) {
		switch {
		case b.fails && err == nil:
			t.Errorf("%s: the block succeeded; the page says it fails:\n%s\noutput:\n%s", where, b.text, out)
		case !b.fails && err != nil:
			t.Errorf("%s: %v\n%s\noutput:\n%s", where, err, b.text, out)
		case b.output != nil && !outputMatches(b.output.text, out):
			t.Errorf("%s: the output is not what line %d shows\nblock:\n%s\nthe page shows:\n%s\ngot:\n%s", where, b.output.line, b.text, b.output.text, out)
		default:
			t.Logf("%s: ok\n%s", where, out)
		}
	}

	// First what runs on its own, on addresses held for the test in place
	// of those the page shows, so that no other process can have them.
	alone := &docDomain{addrs: map[string]string{}}
	for _, p := range pages {
		for _, b := range p.blocks {
			if b.alone || b.kind == "file" {
				for _, a := range docAddrRE.FindAllString(b.text, -1) {
					if alone.addrs[a] == "" {
						alone.addrs[a] = freeAddr(t)
					}
				}
			}
		}
	}
	writeFiles(alone)
	for _, p := range pages {
		for _, b := range p.blocks {
			if !b.alone {
				continue
			}
			where := fmt.Sprintf("%s:%d", p.path, b.line)
			text := alone.rewrite(b.text)
			addrs := docAddrRE.FindAllString(text, -1)
			out, err := runDocBlock(aloneEnv, "set -e -o pipefail\ncd "+shellQuoted(works[p.path])+"\n"+text)
			check(where, b, alone.unrewrite(out), err)
			// What the block started is gone with it, and its addresses
			// free again for the domain.
			until(t, where+"'s addresses free again", func() (bool, string) {
				for _, a := range addrs {
					if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
						c.Close()
						return false, a + " still answers"
					}
				}
				return true, ""
			})
		}
	}

	d := startDocDomain(t)
	writeFiles(d)
	for _, p := range pages {
		for _, b := range p.blocks {
			if b.kind == "file" || b.alone {
				continue
			}
			pre := "set -e -o pipefail\ncd " + shellQuoted(works[p.path]) + "\n"
			if p.path != "README.md" {
				pre += "source " + shellQuoted(d.envFile) + "\n"
			}
			out, err := runDocBlock(env, pre+d.rewrite(b.text))
			check(fmt.Sprintf("%s:%d", p.path, b.line), b, d.unrewrite(out), err)
		}
	}
}

// docAddrRE finds the loopback addresses a block names (port 0 is the
// kernel's choice, not an address).
var docAddrRE = regexp.MustCompile(`127\.0\.0\.1:[1-9][0-9]*`)

// runDocBlock runs script in bash in a process group of its own, killed
// when bash ends (a block may start something in the background) or after
// a minute, and returns what it printed.
func runDocBlock(env []string, script string) (string, error) {
	outFile, err := os.CreateTemp("", "gatehouse-doc-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(outFile.Name())
	defer outFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = env
	// A file, not a pipe: a background process keeping the pipe open
	// would keep Wait waiting.
	cmd.Stdout, cmd.Stderr = outFile, outFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runErr := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		runErr = errors.Join(runErr, errors.New("still running after a minute"))
	}
	out, err := os.ReadFile(outFile.Name())
	if err != nil {
		return "", err
	}
	return string(out), runErr
}

func shellQuoted(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func TestParseDocBlocks(t *testing.T) {
	page := "# Title\n\n<!-- run -->\n```sh\necho hi\n```\n\nprose\n\n<!-- output -->\n```\nhi\n```\n\n" +
		"```sh\nnot marked\n```\n<!-- run fails -->\n\n```sh\nfalse\n```\n<!-- file a.txt -->\n```\ncontent\n```\n" +
		"<!-- setup\ntouch b\n-->\n<!-- a comment -->\n<!-- run alone -->\n```sh\nserve &\n```\n<!-- run alone fails -->\n```sh\nfalse\n```\n" +
		"<!-- validate -->\n```yaml\n{}\n```\n<!-- validate fails -->\n```yaml\nx: 1\n```\n<!-- output -->\n```\nbad\n```\n"
	blocks, err := parseDocBlocks(page)
	if err != nil {
		t.Fatal(err)
	}
	want := []docBlock{
		{line: 4, kind: "run", text: "echo hi\n", output: &docOutput{line: 11, text: "hi\n"}},
		{line: 20, kind: "run", fails: true, text: "false\n"},
		{line: 24, kind: "file", name: "a.txt", text: "content\n"},
		{line: 27, kind: "setup", text: "touch b\n"},
		{line: 32, kind: "run", alone: true, text: "serve &\n"},
		{line: 36, kind: "run", alone: true, fails: true, text: "false\n"},
		{line: 40, kind: "run", alone: true, text: validateScript("{}\n")},
		{line: 44, kind: "run", alone: true, fails: true, text: validateScript("x: 1\n"), output: &docOutput{line: 48, text: "bad\n"}},
	}
	if len(blocks) != len(want) {
		t.Fatalf("blocks %+v, want %+v", blocks, want)
	}
	for i := range want {
		g, w := blocks[i], want[i]
		if g.line != w.line || g.kind != w.kind || g.fails != w.fails || g.alone != w.alone || g.name != w.name || g.text != w.text ||
			(g.output == nil) != (w.output == nil) || (g.output != nil && *g.output != *w.output) {
			t.Errorf("block %d: %+v (output %+v), want %+v (output %+v)", i, g, g.output, w, w.output)
		}
	}
	for _, bad := range []string{
		"<!-- output -->\n```\nx\n```\n",
		"<!-- run -->\nprose\n```sh\nx\n```\n",
		"<!-- run quickly -->\n```sh\nx\n```\n",
		"<!-- run -->\n```sh\nx\n",
		"<!-- setup\nx\n",
		"<!-- run -->\n```sh\nx\n```\n<!-- setup\ny\n-->\n<!-- output -->\n```\nx\n```\n",
		"<!-- run -->\n",
		"<!-- validate quickly -->\n```yaml\n{}\n```\n",
	} {
		if _, err := parseDocBlocks(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestInService(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"policies:\n  - name: cors\n", "    routes: [{name: orders-api, paths: [/api/*]}]\n    policies:\n      - name: cors\n"},
		{"routes:\n  - name: r\n\n    paths: [/r]\n", "    routes:\n      - name: r\n\n        paths: [/r]\n"},
	} {
		got := inService(tc.body)
		if !strings.HasPrefix(got, "upstreams:\n") || !strings.HasSuffix(got, "    upstream: orders\n"+tc.want) {
			t.Errorf("inService(%q) = %q, want it to end with %q", tc.body, got, tc.want)
		}
	}
}

func TestOutputMatches(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"a\nb\n", "a\nb\n", true},
		{"a\nb\n", "a  \nb\n\n", true},
		{"a\nb\n", "a\nc\n", false},
		{"a\n", "a\nb\n", false},
		{"deployed web #… sha256:…\n", "deployed web #5 sha256:3f1c09\n", true},
		{"deployed web #… sha256:…\n", "deployed api #5 sha256:3f1c09\n", false},
		{"head\n…\ntail\n", "head\ntail\n", true},
		{"head\n…\ntail\n", "head\n1\n2\ntail\n", true},
		{"head\n…\ntail\n", "head\n1\n2\n", false},
		{"a.b (x)\n", "aXb (x)\n", false},
	} {
		if got := outputMatches(tc.want, tc.got); got != tc.ok {
			t.Errorf("outputMatches(%q, %q) = %v, want %v", tc.want, tc.got, got, tc.ok)
		}
	}
}
