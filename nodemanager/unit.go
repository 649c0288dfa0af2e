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
// stopping the node manager leaves its gateways serving. runArgs are more
// flags of `node run` (--listen, --plugin-dir, ...), one word each.
func Unit(binary, dataDir, driver string, runArgs ...string) (string, error) {
	for _, p := range []struct{ what, path string }{{"binary", binary}, {"data dir", dataDir}} {
		if !filepath.IsAbs(p.path) || strings.ContainsAny(p.path, unitSpecial) {
			return "", fmt.Errorf("node unit: %s %q must be an absolute path without spaces, quotes, %% or $", p.what, p.path)
		}
	}
	if driver != DriverExec && driver != DriverSystemd {
		return "", fmt.Errorf("node unit: driver %q: want %s or %s", driver, DriverExec, DriverSystemd)
	}
	var extra strings.Builder
	for _, a := range runArgs {
		// systemd would split, unquote or expand these in ExecStart=.
		if a == "" || strings.ContainsAny(a, unitSpecial) || strings.IndexFunc(a, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			return "", fmt.Errorf("node unit: node run argument %q: empty, or holds a space, quote, %%, $ or control character", a)
		}
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && (name == "data-dir" || name == "driver") {
			return "", fmt.Errorf("node unit: node run argument %q: give it as node unit's own --%s", a, name)
		}
		extra.WriteString(" " + a)
	}
	r := strings.NewReplacer("@BINARY@", binary, "@DATADIR@", dataDir, "@DRIVER@", driver, "@ARGS@", extra.String(),
		"@DRIVER_HARDENING@", driverHardening[driver])
	return r.Replace(unitTemplate), nil
}

// driverHardening is the part of the unit's sandbox that depends on the
// driver.
var driverHardening = map[string]string{
	// The gateways run in the unit: the one capability they need, and no
	// MemoryDenyWriteExecute, which a policy plugin's runtime may not
	// bear (the systemd driver's gateway units do not set it either).
	DriverExec: `CapabilityBoundingSet=CAP_NET_BIND_SERVICE
`,
	// systemctl, run by the node manager, writes the gateway unit into
	// /etc/systemd/system; the environment files go to
	// /etc/gatehouse/gateway, which systemd makes and leaves writable, and
	// the copies of releases the gateways run to
	// /var/lib/gatehouse-gateway-releases (supervisor.SystemdOptions
	// ReleaseDir), likewise. Root talks to systemd without a capability.
	DriverSystemd: `ReadWritePaths=/etc/systemd/system
ConfigurationDirectory=gatehouse/gateway
ConfigurationDirectoryMode=0700
StateDirectory=gatehouse-gateway-releases
StateDirectoryMode=0755
CapabilityBoundingSet=
MemoryDenyWriteExecute=yes
`,
}

// unitSpecial are the characters systemd interprets in ExecStart=.
const unitSpecial = " \t\n\"'\\%$;"
