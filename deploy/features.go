package deploy

import "github.com/gatehouse/gatehouse/fieldpath"

// FeatureLevel is the configuration format level this build's gateways
// understand. A gateway refuses a configuration it cannot read; so that
// the admin node can say so before signing, node managers report the
// level of their gateway binary, and a configuration's own level
// (RequiredFeatureLevel) is compared with it. It goes up by one whenever
// a configuration can say something that gateways of the previous level
// would refuse (a new policy kind or field), and RequiredFeatureLevel then
// returns the new level for configurations that use it.
//
// Level 2: the http-log policy's sample_percent (HTTPLogSampleKey).
const FeatureLevel = 2

// HTTPLogPolicy is the policy kind that ships access-log lines to a
// collector, and HTTPLogSampleKey its setting (level 2) that logs only a
// percentage of the exchanges: a level-1 gateway refuses the field.
const (
	HTTPLogPolicy    = "http-log"
	HTTPLogSampleKey = "sample_percent"
)

// ExternalPolicy is the policy kind that runs a plugin binary from the
// gateway's plugin directory (policy/external), and ExternalPluginKey the
// key of its configuration naming the binary.
const (
	ExternalPolicy    = "external"
	ExternalPluginKey = "plugin"
)

// PluginUse is an external policy's plugin binary and the field path of
// the configuration setting that names it.
type PluginUse struct {
	Field  string
	Plugin string
}

// RequiredFeatureLevel returns the lowest feature level whose gateways can
// run cfg, and the field path of what needs it ("" when every gateway
// can): the first field, in the order of the configuration, that needs
// the level returned.
func RequiredFeatureLevel(cfg *Config) (int, string) {
	field := ""
	eachPolicy(cfg, func(path string, p Policy) {
		if field != "" || p.Name != HTTPLogPolicy {
			return
		}
		if _, ok := p.Config[HTTPLogSampleKey]; ok {
			field = fieldpath.Join(path+".config", HTTPLogSampleKey)
		}
	})
	if field != "" {
		return 2, field
	}
	return 1, ""
}

// eachPolicy calls fn with every policy of cfg and its field path, wherever
// the policies are (global, service, route, consumer), in the order of the
// configuration.
func eachPolicy(cfg *Config, fn func(path string, p Policy)) {
	add := func(path string, ps []Policy) {
		for i, p := range ps {
			fn(fieldpath.Index(path, i), p)
		}
	}
	add("global_policies", cfg.GlobalPolicies)
	for i, s := range cfg.Services {
		sp := fieldpath.Index("services", i)
		add(sp+".policies", s.Policies)
		for j, r := range s.Routes {
			add(fieldpath.Index(sp+".routes", j)+".policies", r.Policies)
		}
	}
	for i, c := range cfg.Consumers {
		add(fieldpath.Index("consumers", i)+".policies", c.Policies)
	}
}

// ExternalPlugins lists the plugin binaries that cfg's external policies
// name, wherever the policies are (global, service, route, consumer), in
// the order of the configuration. Policies whose plugin is not a string
// are left to validation.
func ExternalPlugins(cfg *Config) []PluginUse {
	var out []PluginUse
	eachPolicy(cfg, func(path string, p Policy) {
		if p.Name != ExternalPolicy {
			return
		}
		if name, ok := p.Config[ExternalPluginKey].(string); ok && name != "" {
			out = append(out, PluginUse{Field: fieldpath.Join(path+".config", ExternalPluginKey), Plugin: name})
		}
	})
	return out
}
