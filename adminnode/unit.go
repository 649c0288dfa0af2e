package adminnode

import (
	_ "embed"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
)

//go:embed gatehouse-admin.service
var unitTemplate string

// DefaultUnitUser is the account the admin node's unit runs as.
const DefaultUnitUser = "gatehouse"

// unitUser is a POSIX account name as useradd accepts it by default.
var unitUser = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// Unit returns the admin node's systemd unit: it runs binary as user on
// dataDir, serving listen, with the rest of the system read-only or
// hidden and no privilege (the port, 8090 by default, needs none).
func Unit(binary, dataDir, user, listen string) (string, error) {
	for _, p := range []struct{ what, path string }{{"binary", binary}, {"data dir", dataDir}} {
		if !filepath.IsAbs(p.path) || strings.ContainsAny(p.path, " \t\n\"'\\%$") {
			return "", fmt.Errorf("admin unit: %s %q must be an absolute path without spaces, quotes, %% or $", p.what, p.path)
		}
	}
	if !unitUser.MatchString(user) || user == "root" {
		return "", fmt.Errorf("admin unit: user %q: want an account name (lowercase letters, digits, _ and -), not root", user)
	}
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "" || strings.ContainsAny(listen, " \t\n\"'\\%$") {
		return "", fmt.Errorf("admin unit: listen %q: want [IP]:port", listen)
	}
	r := strings.NewReplacer("@BINARY@", binary, "@DATADIR@", dataDir, "@USER@", user, "@LISTEN@", listen)
	return r.Replace(unitTemplate), nil
}
