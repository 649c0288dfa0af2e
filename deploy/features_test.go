package deploy

import (
	"reflect"
	"testing"
)

func TestExternalPlugins(t *testing.T) {
	ext := func(plugin any) Policy {
		return Policy{Name: ExternalPolicy, Config: map[string]any{ExternalPluginKey: plugin}}
	}
	cfg := &Config{
		GlobalPolicies: []Policy{{Name: "cors"}, ext("audit-log")},
		Services: []Service{
			{Name: "a", Policies: []Policy{ext("sig")}, Routes: []Route{{Name: "r", Policies: []Policy{{Name: "key-auth"}, ext("sig")}}}},
			{Name: "b", Routes: []Route{{Name: "r"}, {Name: "s", Policies: []Policy{ext(42), ext("")}}}},
		},
		Consumers: []Consumer{{Name: "c", Policies: []Policy{ext("quota")}}},
	}
	want := []PluginUse{
		{Field: "global_policies[1].config.plugin", Plugin: "audit-log"},
		{Field: "services[0].policies[0].config.plugin", Plugin: "sig"},
		{Field: "services[0].routes[0].policies[1].config.plugin", Plugin: "sig"},
		{Field: "consumers[0].policies[0].config.plugin", Plugin: "quota"},
	}
	if got := ExternalPlugins(cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("ExternalPlugins:\n got %+v\nwant %+v", got, want)
	}
	if got := ExternalPlugins(&Config{}); got != nil {
		t.Errorf("ExternalPlugins of an empty configuration: %+v", got)
	}
	if level, field := RequiredFeatureLevel(cfg); level > FeatureLevel || field != "" {
		t.Errorf("RequiredFeatureLevel: %d %q, above this build's %d", level, field, FeatureLevel)
	}
}
