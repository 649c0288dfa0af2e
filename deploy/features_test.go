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

func TestRequiredFeatureLevel(t *testing.T) {
	sampled := Policy{Name: HTTPLogPolicy, Config: map[string]any{"endpoint": "http://c", HTTPLogSampleKey: 10}}
	plain := Policy{Name: HTTPLogPolicy, Config: map[string]any{"endpoint": "http://c"}}
	for _, tc := range []struct {
		name  string
		cfg   Config
		level int
		field string
	}{
		{"empty", Config{}, 1, ""},
		{"http-log without sampling", Config{GlobalPolicies: []Policy{plain}}, 1, ""},
		{"sampled global", Config{GlobalPolicies: []Policy{plain, sampled}}, 2, "global_policies[1].config.sample_percent"},
		{"sampled on a route", Config{Services: []Service{{Name: "a", Routes: []Route{{Name: "r"}, {Name: "s", Policies: []Policy{sampled}}}}}},
			2, "services[0].routes[1].policies[0].config.sample_percent"},
		{"the first of two", Config{Services: []Service{{Name: "a", Policies: []Policy{sampled}}}, Consumers: []Consumer{{Name: "c", Policies: []Policy{sampled}}}},
			2, "services[0].policies[0].config.sample_percent"},
		{"another kind's sample_percent", Config{GlobalPolicies: []Policy{{Name: "cors", Config: map[string]any{HTTPLogSampleKey: 1}}}}, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			level, field := RequiredFeatureLevel(&tc.cfg)
			if level != tc.level || field != tc.field {
				t.Errorf("RequiredFeatureLevel = %d %q, want %d %q", level, field, tc.level, tc.field)
			}
			if level > FeatureLevel {
				t.Errorf("level %d is above this build's %d", level, FeatureLevel)
			}
		})
	}
}
