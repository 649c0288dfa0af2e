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
// against: its instances and their hosts' capabilities.
type fleet struct {
	instances []store.Instance
	caps      map[string]*store.HostCapabilities
}

// fleetOf reads the instances of group and the capabilities of the hosts,
// from the store rather than the host index: validation and deploys are
// rare, and the store is what every admin node shares.
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
	return fleet{instances: all, caps: caps}, nil
}

// warnings lists what cfg needs that the fleet's instances lack.
func (f fleet) warnings(cfg *deploy.Config) []apitypes.Warning {
	uses := deploy.ExternalPlugins(cfg)
	level, levelField := deploy.RequiredFeatureLevel(cfg)
	if len(uses) == 0 && level <= 1 {
		return []apitypes.Warning{}
	}
	return lacks(uses, level, levelField, f.instances, f.caps)
}

// lacks lists, for each plugin use and for the feature level, the
// instances whose host's capabilities lack it; instances of hosts without
// capabilities are left out.
func lacks(uses []deploy.PluginUse, level int, levelField string, all []store.Instance, caps map[string]*store.HostCapabilities) []apitypes.Warning {
	warnings := []apitypes.Warning{}
	var ins []store.Instance
	for _, in := range all {
		if caps[in.Host] != nil {
			ins = append(ins, in)
		}
	}
	// lacking lists the instances, and their hosts, for which missing is
	// true of their host's capabilities.
	lacking := func(missing func(c *store.HostCapabilities) bool) (names, onHosts []string) {
		for _, in := range ins {
			if missing(caps[in.Host]) {
				names = append(names, in.Name)
				if !slices.Contains(onHosts, in.Host) {
					onHosts = append(onHosts, in.Host)
				}
			}
		}
		slices.Sort(names)
		slices.Sort(onHosts)
		return names, onHosts
	}
	for _, u := range uses {
		names, onHosts := lacking(func(c *store.HostCapabilities) bool { return !slices.Contains(c.Plugins, u.Plugin) })
		if len(names) > 0 {
			warnings = append(warnings, apitypes.Warning{Field: u.Field, Instances: names,
				Message: fmt.Sprintf("external policy plugin %q is not in the plugin directory of host %s: %s would refuse this configuration",
					u.Plugin, strings.Join(onHosts, ", "), strings.Join(names, ", "))})
		}
	}
	names, onHosts := lacking(func(c *store.HostCapabilities) bool { return c.FeatureLevel != 0 && c.FeatureLevel < level })
	if len(names) > 0 {
		warnings = append(warnings, apitypes.Warning{Field: levelField, Instances: names,
			Message: fmt.Sprintf("this configuration needs feature level %d, which the gateways of host %s do not have: %s would refuse it",
				level, strings.Join(onHosts, ", "), strings.Join(names, ", "))})
	}
	return warnings
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
