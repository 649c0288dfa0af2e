package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gatehouse/gatehouse/"

// processes are the trees of the three processes.
var processes = []string{"adminnode", "nodemanager", "gateway"}

// Contracts are the packages a process publishes to the others: wire
// types, clients and helpers, no process logic. Any other package of a
// process is its own, and no package of another process may import it.
// Neutral packages outside the three trees (deploy, pki, metrics/traffic,
// ...) are anyone's.
var contracts = map[string]string{
	// The admin node's HTTP API: its bodies and its Go client, which the
	// node manager (agent API) and the CLI use.
	module + "adminnode/apitypes": "adminnode",
	module + "adminnode/client":   "adminnode",
	// The node manager's local API: its bodies and the gateways' client.
	module + "nodemanager/localapi": "nodemanager",
}

// pkg is what go list says of a package.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

// process returns the process tree path is in, or "".
func process(path string) string {
	rest, ok := strings.CutPrefix(path, module)
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rest, "/")
	if slices.Contains(processes, top) {
		return top
	}
	return ""
}

// listPackages returns every package of the module.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports,Deps", module+"...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// wiring are the packages outside the three trees that put processes
// together (the binary, gatehouse dev, benchmarks, end-to-end tests): they
// may import any package. Every other package outside the trees is shared
// by the processes and, like a contract, must not carry process logic.
var wiring = []string{"cmd/", "devdomain", "bench/", "e2e"}

func isWiring(path string) bool {
	rest, ok := strings.CutPrefix(path, module)
	if !ok {
		return false
	}
	for _, w := range wiring {
		if rest == strings.TrimSuffix(w, "/") || strings.HasSuffix(w, "/") && strings.HasPrefix(rest, w) {
			return true
		}
	}
	return false
}

// violations returns, as "importer → imported", every import that breaks
// the rule:
//
//   - a package of one process, or its tests, imports a package of
//     another process that is not a contract, directly or through
//     shared packages;
//   - a contract depends on a package of any process, its own included,
//     that is not a contract: a contract carries no process logic to
//     whoever imports it;
//   - a shared package (outside the three trees, not wiring) depends on
//     a package of a process that is not a contract.
//
// Only the code of contracts and shared packages is held to the rule, not
// their tests, which may start a real process to talk to.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		if isWiring(p.ImportPath) {
			continue
		}
		owner := process(p.ImportPath)
		_, isContract := contracts[p.ImportPath]
		direct := map[string]bool{}
		for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, imp := range list {
				direct[imp] = true
			}
		}
		deps := p.Deps
		if owner != "" {
			deps = slices.Concat(p.Deps, p.TestImports, p.XTestImports)
		}
		slices.Sort(deps)
		for _, dep := range slices.Compact(deps) {
			other := process(dep)
			if other == "" || dep == p.ImportPath || contracts[dep] != "" {
				continue
			}
			if other == owner && !(isContract && slices.Contains(p.Deps, dep)) {
				continue
			}
			var notes []string
			if !direct[dep] {
				notes = append(notes, "indirectly")
			}
			switch {
			case isContract:
				notes = append(notes, "a contract depends on process logic")
			case owner == "":
				notes = append(notes, "a shared package depends on process logic")
			}
			line := p.ImportPath + " → " + dep
			if len(notes) > 0 {
				line += " (" + strings.Join(notes, "; ") + ")"
			}
			out = append(out, strings.ReplaceAll(line, module, ""))
		}
	}
	return out
}

// TestProcessesShareOnlyContracts fails for every package of one process
// that imports a package of another which is not one of its published
// contracts, and for every contract that depends on process logic.
func TestProcessesShareOnlyContracts(t *testing.T) {
	pkgs := listPackages(t)
	listed := map[string]bool{}
	for _, p := range pkgs {
		listed[p.ImportPath] = true
	}
	for c, owner := range contracts {
		if !listed[c] {
			t.Errorf("contract %s does not exist", c)
		}
		if process(c) != owner {
			t.Errorf("contract %s is listed as the %s's, but it is not in that tree", c, owner)
		}
	}
	for _, v := range violations(pkgs) {
		t.Errorf("%s", v)
	}
}

// TestViolations checks the rule itself on made-up packages, so that a
// mistake in it cannot pass every real import silently.
func TestViolations(t *testing.T) {
	m := func(s string) string { return module + s }
	pkgs := []pkg{
		{ImportPath: m("nodemanager"), Imports: []string{m("adminnode/client"), m("deploy")},
			Deps: []string{m("adminnode/apitypes"), m("adminnode/client"), m("deploy")}},
		{ImportPath: m("nodemanager/agent"), Imports: []string{m("adminnode/store")},
			Deps: []string{m("adminnode/store")}},
		{ImportPath: m("gateway"), Imports: []string{m("devtool")},
			Deps: []string{m("devtool"), m("nodemanager/state")}},
		{ImportPath: m("gateway/proxy"), XTestImports: []string{m("adminnode/api"), m("gateway/proxy")}},
		{ImportPath: m("adminnode/client"), Imports: []string{m("adminnode/rbac")},
			Deps: []string{m("adminnode/apitypes"), m("adminnode/rbac")}},
		{ImportPath: m("adminnode/api"), Imports: []string{m("adminnode/store"), m("adminnode/apitypes")},
			Deps: []string{m("adminnode/store"), m("adminnode/apitypes")}},
		{ImportPath: m("cli"), Imports: []string{m("adminnode/client")}, TestImports: []string{m("adminnode/ca")},
			Deps: []string{m("adminnode/apitypes"), m("adminnode/client")}},
		{ImportPath: m("promotion"), Imports: []string{m("adminnode/store")}, Deps: []string{m("adminnode/store")}},
		{ImportPath: m("devdomain"), Imports: []string{m("adminnode/store")}, Deps: []string{m("adminnode/store")}},
		{ImportPath: m("bench/nodescale"), Imports: []string{m("adminnode")}, Deps: []string{m("adminnode")}},
	}
	want := []string{
		"nodemanager/agent → adminnode/store",
		"gateway → nodemanager/state (indirectly)",
		"gateway/proxy → adminnode/api",
		"adminnode/client → adminnode/rbac (a contract depends on process logic)",
		"promotion → adminnode/store (a shared package depends on process logic)",
	}
	if got := violations(pkgs); !slices.Equal(got, want) {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
