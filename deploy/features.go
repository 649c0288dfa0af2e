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
const FeatureLevel = 1

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
// can). Every configuration is of level 1 so far.
func RequiredFeatureLevel(cfg *Config) (int, string) {
	return 1, ""
}

// ExternalPlugins lists the plugin binaries that cfg's external policies
// name, wherever the policies are (global, service, route, consumer), in
// the order of the configuration. Policies whose plugin is not a string
// are left to validation.
func ExternalPlugins(cfg *Config) []PluginUse {
	var out []PluginUse
	add := func(path string, ps []Policy) {
		for i, p := range ps {
			if p.Name != ExternalPolicy {
				continue
			}
			if name, ok := p.Config[ExternalPluginKey].(string); ok && name != "" {
				out = append(out, PluginUse{Field: fieldpath.Join(fieldpath.Index(path, i)+".config", ExternalPluginKey), Plugin: name})
			}
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
	return out
}
