package deploy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps deploy a contract: the admin node, the node
// manager, the gateway and the CLI all import it, so it must depend on no
// policy implementation (those come in through PolicyKinds) and on nothing
// heavy such as gRPC or go-plugin, which external policies bring. Any
// package not listed here fails the test: of the module, only deploy and
// the two leaf packages of path and HTTP syntax it shares with the
// policies (fieldpath, httpascii) are allowed.
func TestDependencies(t *testing.T) {
	allowed := map[string]bool{
		"github.com/gatehouse/gatehouse/deploy":    true,
		"github.com/gatehouse/gatehouse/fieldpath": true,
		"github.com/gatehouse/gatehouse/httpascii": true,
		"gopkg.in/yaml.v3":                         true,
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, standard, _ := strings.Cut(line, " ")
		if standard != "true" && !allowed[path] {
			t.Errorf("deploy depends on %s", path)
		}
	}
}
