package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// Bounds of a heartbeat's capabilities.
const (
	maxPlugins    = 1000
	maxCapability = 255
)

// hostCaps remembers the capabilities last written for each host, so that
// a heartbeat writes to the store only when they change.
type hostCaps struct {
	mu sync.Mutex
	m  map[string]store.HostCapabilities
}

func (h *hostCaps) get(host string) (store.HostCapabilities, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.m[host]
	return c, ok
}

func (h *hostCaps) put(host string, c store.HostCapabilities) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]store.HostCapabilities{}
	}
	h.m[host] = c
}

// noteCapabilities records what the heartbeat's host says its gateways
// can run, in the store (where every admin node sharing it reads them)
// when they changed.
func (s *Server) noteCapabilities(q *request, c *apitypes.HostCapabilities) error {
	if c == nil {
		// A node manager older than capabilities: what it had said, if
		// anything, stands.
		return nil
	}
	if len(c.Plugins) > maxPlugins {
		return badRequest("capabilities.plugins", "at most %d plugins, not %d", maxPlugins, len(c.Plugins))
	}
	for _, v := range append([]string{c.GatewayVersion, c.PluginDir}, c.Plugins...) {
		if len(v) > maxCapability {
			return badRequest("capabilities", "a capability of more than %d bytes", maxCapability)
		}
	}
	next := store.HostCapabilities{GatewayVersion: c.GatewayVersion, FeatureLevel: c.FeatureLevel, PluginDir: c.PluginDir,
		Plugins: slices.Sorted(slices.Values(c.Plugins)), Since: s.now()}
	last, known := s.caps.get(q.node)
	if !known {
		h, err := s.store.GetHost(q.ctx, q.node)
		if err != nil {
			return err
		}
		if h.Capabilities != nil {
			last, known = *h.Capabilities, true
		}
	}
	if known && sameCapabilities(last, next) {
		s.caps.put(q.node, last)
		return nil
	}
	if err := s.store.SetHostCapabilities(q.ctx, q.node, next); err != nil {
		return fmt.Errorf("record the capabilities of host %q: %w", q.node, err)
	}
	s.caps.put(q.node, next)
	return nil
}

func sameCapabilities(a, b store.HostCapabilities) bool {
	return a.GatewayVersion == b.GatewayVersion && a.FeatureLevel == b.FeatureLevel && a.PluginDir == b.PluginDir &&
		slices.Equal(a.Plugins, b.Plugins)
}

func capabilitiesOut(c *store.HostCapabilities) *apitypes.HostCapabilities {
	if c == nil {
		return nil
	}
	return &apitypes.HostCapabilities{GatewayVersion: c.GatewayVersion, FeatureLevel: c.FeatureLevel, PluginDir: c.PluginDir,
		Plugins: append([]string{}, c.Plugins...), Since: c.Since}
}

// runWarnings lists what cfg needs that instances of group lack: an
// external policy's plugin absent from their host's plugin directory, a
// feature level above their gateway's. Instances whose host has not
// reported its capabilities (no heartbeat yet, an older node manager) are
// not judged.
func (s *Server) runWarnings(ctx context.Context, group string, cfg *deploy.Config) ([]apitypes.Warning, error) {
	f, err := s.fleetOf(ctx, group)
	if err != nil {
		return nil, err
	}
	return f.warnings(cfg), nil
}

// fleet is what the run warnings of a group's configuration are judged
// against: its instances, their hosts' capabilities and the feature level
// each instance's running gateway reported.
type fleet struct {
	instances []store.Instance
	caps      map[string]*store.HostCapabilities
	levels    map[string]int
}

// fleetOf reads the instances of group and the capabilities of the hosts,
// from the store rather than the host index: validation and deploys are
// rare, and the store is what every admin node shares. The levels of the
// running gateways are the heartbeats'.
func (s *Server) fleetOf(ctx context.Context, group string) (fleet, error) {
	all, err := s.store.ListInstances(ctx, store.InstanceFilter{Group: group})
	if err != nil {
		return fleet{}, err
	}
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return fleet{}, err
	}
	caps := make(map[string]*store.HostCapabilities, len(hosts))
	for _, h := range hosts {
		caps[h.Name] = h.Capabilities
	}
	levels := map[string]int{}
	for name, st := range s.states() {
		if st.FeatureLevel != 0 {
			levels[name] = st.FeatureLevel
		}
	}
	return fleet{instances: all, caps: caps, levels: levels}, nil
}

// levelOf is the feature level of in's gateway: the one its running
// process reported, else its host's gateway binary's; 0 when neither is
// known (not judged).
func (f fleet) levelOf(in store.Instance) int {
	if l := f.levels[in.Name]; l != 0 {
		return l
	}
	if c := f.caps[in.Host]; c != nil {
		return c.FeatureLevel
	}
	return 0
}

// below lists the instances whose gateways are known to have a feature
// level under level, by name.
func (f fleet) below(level int) []store.Instance {
	var out []store.Instance
	for _, in := range f.instances {
		if l := f.levelOf(in); l != 0 && l < level {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b store.Instance) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// warnings lists what cfg needs that the fleet's instances lack.
func (f fleet) warnings(cfg *deploy.Config) []apitypes.Warning {
	uses := deploy.ExternalPlugins(cfg)
	level, levelField := deploy.RequiredFeatureLevel(cfg)
	if len(uses) == 0 && level <= 1 {
		return []apitypes.Warning{}
	}
	return f.lacks(uses, level, levelField)
}

// lacks lists, for each plugin use and for the feature level, the
// instances that lack it: the plugin absent from their host's plugin
// directory (instances of hosts without capabilities are left out), a
// gateway below the level.
func (f fleet) lacks(uses []deploy.PluginUse, level int, levelField string) []apitypes.Warning {
	warnings := []apitypes.Warning{}
	for _, u := range uses {
		var names, onHosts []string
		for _, in := range f.instances {
			if c := f.caps[in.Host]; c != nil && !slices.Contains(c.Plugins, u.Plugin) {
				names = append(names, in.Name)
				if !slices.Contains(onHosts, in.Host) {
					onHosts = append(onHosts, in.Host)
				}
			}
		}
		slices.Sort(names)
		slices.Sort(onHosts)
		if len(names) > 0 {
			warnings = append(warnings, apitypes.Warning{Field: u.Field, Instances: names,
				Message: fmt.Sprintf("external policy plugin %q is not in the plugin directory of host %s: %s would refuse this configuration",
					u.Plugin, strings.Join(onHosts, ", "), strings.Join(names, ", "))})
		}
	}
	if low := f.below(level); len(low) > 0 {
		warnings = append(warnings, apitypes.Warning{Field: levelField, Instances: instanceNames(low),
			Message: fmt.Sprintf("%s needs configuration feature level %d, which the gateways of %s do not have: they would refuse it",
				levelField, level, f.describe(low))})
	}
	return warnings
}

// describe names instances with their host and gateway feature level:
// "a1 (host old, level 1), b1 (host new, level 1)".
func (f fleet) describe(ins []store.Instance) string {
	parts := make([]string, len(ins))
	for i, in := range ins {
		parts[i] = fmt.Sprintf("%s (host %s, level %d)", in.Name, in.Host, f.levelOf(in))
	}
	return strings.Join(parts, ", ")
}

func instanceNames(ins []store.Instance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.Name
	}
	return out
}

// partial decides what a deploy of cfg does about the instances whose
// gateways are below its feature level: none, nothing to decide; without
// allowPartial, the deploy is refused naming them and the field that
// needs the level; with it, they are the instances skipped, unless no
// instance of the group could run it.
func (f fleet) partial(group string, cfg *deploy.Config, allowPartial bool) ([]store.SkippedInstance, error) {
	level, field := deploy.RequiredFeatureLevel(cfg)
	low := f.below(level)
	if len(low) == 0 {
		return nil, nil
	}
	if !allowPartial || len(low) == len(f.instances) {
		how := "deploy with allow_partial (CLI: --allow-partial) to deploy it only to the instances that can run it, or upgrade their gateways"
		if allowPartial {
			how = "no instance of the group can run it (allow_partial needs at least one)"
		}
		e := newError(http.StatusUnprocessableEntity, apitypes.CodeUnrunnable,
			"instances %s of group %s cannot run this configuration: %s needs configuration feature level %d; nothing deployed: %s",
			f.describe(low), group, field, level, how)
		e.body.Field = field
		e.body.Errors = []apitypes.FieldError{{Field: field, Message: fmt.Sprintf("needs configuration feature level %d, which %s do not have", level, f.describe(low))}}
		return nil, e
	}
	out := make([]store.SkippedInstance, len(low))
	for i, in := range low {
		out[i] = store.SkippedInstance{Instance: in.Name, Host: in.Host,
			Reason: fmt.Sprintf("%s needs configuration feature level %d; the gateway has level %d", field, level, f.levelOf(in))}
	}
	return out, nil
}

// refuseWarnings is the answer of a strict deploy whose configuration
// instances of the group cannot run: 422, each warning a field error.
func refuseWarnings(group string, warnings []apitypes.Warning) *apiError {
	e := newError(http.StatusUnprocessableEntity, apitypes.CodeUnrunnable,
		"instances of group %s cannot run this configuration (%d warning(s)); nothing deployed (strict)", group, len(warnings))
	for _, w := range warnings {
		e.body.Errors = append(e.body.Errors, apitypes.FieldError{Field: w.Field, Message: w.Message})
	}
	if len(warnings) > 0 {
		e.body.Field = warnings[0].Field
	}
	return e
}

// versionMix groups instances by the gateway version and feature level
// they report, the most common first (then by version), each list of
// names sorted.
func versionMix(views []apitypes.Instance) []apitypes.VersionCount {
	type key struct {
		version string
		level   int
	}
	byKey := map[key][]string{}
	for _, v := range views {
		var k key
		if v.Observed != nil {
			k = key{v.Observed.GatewayVersion, v.Observed.FeatureLevel}
		}
		byKey[k] = append(byKey[k], v.Name)
	}
	out := make([]apitypes.VersionCount, 0, len(byKey))
	for k, names := range byKey {
		slices.Sort(names)
		out = append(out, apitypes.VersionCount{Version: k.version, FeatureLevel: k.level, Instances: names})
	}
	slices.SortFunc(out, func(a, b apitypes.VersionCount) int {
		if d := len(b.Instances) - len(a.Instances); d != 0 {
			return d
		}
		if c := strings.Compare(a.Version, b.Version); c != 0 {
			return c
		}
		return a.FeatureLevel - b.FeatureLevel
	})
	return out
}
