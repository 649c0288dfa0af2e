package nodemanager

import (
	_ "embed"
	"fmt"
	"path/filepath"
	"strings"
)

//go:embed gatehouse-node.service
var unitTemplate string

// Unit returns the node manager's systemd unit for binary, dataDir and
// driver: Type=notify with a watchdog, and KillMode=process so that
// stopping the node manager leaves its gateways serving.
func Unit(binary, dataDir, driver string) (string, error) {
	for _, p := range []struct{ what, path string }{{"binary", binary}, {"data dir", dataDir}} {
		if !filepath.IsAbs(p.path) || strings.ContainsAny(p.path, " \t\n\"'\\%$") {
			return "", fmt.Errorf("node unit: %s %q must be an absolute path without spaces, quotes, %% or $", p.what, p.path)
		}
	}
	if driver != DriverExec && driver != DriverSystemd {
		return "", fmt.Errorf("node unit: driver %q: want %s or %s", driver, DriverExec, DriverSystemd)
	}
	r := strings.NewReplacer("@BINARY@", binary, "@DATADIR@", dataDir, "@DRIVER@", driver)
	return r.Replace(unitTemplate), nil
}
