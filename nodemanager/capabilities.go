package nodemanager

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// capabilities is what this host's gateways can run, for the heartbeats:
// the admin node warns before deploying what they would refuse.
func (a *agent) capabilities(ctx context.Context) *apitypes.HostCapabilities {
	version, level := a.probe.get(ctx)
	plugins, err := pluginsIn(a.pluginDir)
	if err != nil {
		a.log.Warn("cannot list the plugin directory", "dir", a.pluginDir, "error", err)
	}
	return &apitypes.HostCapabilities{GatewayVersion: version, FeatureLevel: level, PluginDir: a.pluginDir, Plugins: plugins}
}

// pluginsIn lists the plugin binaries of dir as a gateway would accept
// them (policy/external): regular executable files. A missing directory
// holds none.
func pluginsIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return []string{}, err
	}
	out := []string{}
	for _, e := range entries {
		// Info follows no symlink; Stat does, as the gateway's does.
		fi, err := os.Stat(dir + string(os.PathSeparator) + e.Name())
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out, nil
}

// versionLine is what `gatehouse --version` prints; binaries older than
// the feature level print no level.
var versionLine = regexp.MustCompile(`^gatehouse version (\S+)(?: \(configuration feature level (\d+)\))?`)

// gatewayProbe asks the gateway binary its version and feature level, and
// asks again when the file changes (an upgrade in place).
type gatewayProbe struct {
	binary string

	mu      sync.Mutex
	stamp   string
	version string
	level   int
}

// probeTimeout bounds one `gatehouse --version`.
const probeTimeout = 5 * time.Second

// get returns the binary's version and feature level; "" and 0 when they
// cannot be told (the admin node then checks nothing against them).
func (p *gatewayProbe) get(ctx context.Context) (string, int) {
	fi, err := os.Stat(p.binary)
	if err != nil {
		return "", 0
	}
	stamp := strconv.FormatInt(fi.Size(), 10) + "/" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
	p.mu.Lock()
	defer p.mu.Unlock()
	if stamp == p.stamp {
		return p.version, p.level
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.binary, "--version").Output()
	if err != nil {
		return "", 0
	}
	p.stamp, p.version, p.level = stamp, "", 0
	if m := versionLine.FindSubmatch(out); m != nil {
		p.version = string(m[1])
		p.level, _ = strconv.Atoi(string(m[2]))
	}
	return p.version, p.level
}
