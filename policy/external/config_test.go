package external

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, config string
		want         []string
	}{
		{"no plugin", `{}`, []string{"plugin: required"}},
		{"plugin not a string", `{"plugin": 5}`, []string{"plugin: must be a string, got an integer"}},
		{"plugin with a path", `{"plugin": "../bin/sh"}`, []string{`plugin: must be the file name of a binary in the plugin directory (letters, digits, ".", "_" and "-"; no path)`}},
		{"plugin with a slash", `{"plugin": "a/b"}`, []string{`plugin: must be the file name of a binary in the plugin directory (letters, digits, ".", "_" and "-"; no path)`}},
		{"timeout too long", `{"plugin": "p", "timeout": "20s"}`, []string{"timeout: must be between 1ms and 10s"}},
		{"timeout not a duration", `{"plugin": "p", "timeout": 100}`, []string{`timeout: must be a duration such as "1s" or "250ms", got an integer`}},
		{"failure mode", `{"plugin": "p", "failure_mode": "maybe"}`, []string{`failure_mode: must be "closed" or "open"`}},
		{"body without max", `{"plugin": "p", "body": {}}`, []string{"body.max_bytes: required"}},
		{"body too large", `{"plugin": "p", "body": {"max_bytes": 2000000}}`, []string{"body.max_bytes: must be between 1 and 1048576"}},
		{"body unknown field", `{"plugin": "p", "body": {"max_bytes": 10, "max": 1}}`, []string{"body.max: unknown field"}},
		{"header name", `{"plugin": "p", "headers": ["X-Ok", "bad name"]}`, []string{"headers[1]: must be a header name"}},
		{"headers not a list", `{"plugin": "p", "headers": "X-Ok"}`, []string{"headers: must be a list of strings, got a string"}},
		{"unknown field", `{"plugin": "p", "tiemout": "1s"}`, []string{"tiemout: unknown field"}},
		{"several", `{"timeout": "0s", "failure_mode": "x"}`, []string{
			"plugin: required", "timeout: must be between 1ms and 10s", `failure_mode: must be "closed" or "open"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policytest.Errors(t, Kind, tt.config, policytest.Env(nil))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	// Validation (no resources) cannot see the plugin directory: it
	// checks the name's form only.
	p := policytest.Build(t, Kind, `{"plugin": "not-on-the-admin-node", "headers": null, "config": null}`, policytest.Env(nil)).(*external)
	s := p.s
	if s.timeout != 100*time.Millisecond || s.failOpen || s.maxBody != 0 || s.headers != nil || string(s.config) != "null" {
		t.Errorf("defaults: %+v", s)
	}
	p = policytest.Build(t, Kind, `{"plugin": "p", "config": {"b": [1, "x"], "a": true}, "timeout": "2s",
		"failure_mode": "open", "body": {"max_bytes": 4096}, "headers": []}`, policytest.Env(nil)).(*external)
	s = p.s
	if s.timeout != 2*time.Second || !s.failOpen || s.maxBody != 4096 || s.headers == nil || len(s.headers) != 0 ||
		string(s.config) != `{"a":true,"b":[1,"x"]}` {
		t.Errorf("settings: %+v config %s", s, s.config)
	}
}

func TestConfigOnGateway(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, config, want string
	}{
		{"missing", dir, `{"plugin": "nothere"}`, "plugin: no file nothere in the plugin directory " + dir},
		{"not executable", dir, `{"plugin": "notexec"}`, "plugin: " + filepath.Join(dir, "notexec") + " is not executable"},
		{"directory", dir, `{"plugin": "adir"}`, "plugin: " + filepath.Join(dir, "adir") + " is not a regular file"},
		{"no plugin dir", "", `{"plugin": "signature"}`, "plugin: this gateway has no plugin directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, res, _ := gatewayEnv(t)
			env.PluginDir = tt.dir
			got := policytest.Errors(t, Kind, tt.config, env)
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("errors %q, want %q", got, tt.want)
			}
			if res.Made() != 0 {
				t.Errorf("a refused configuration started %d plugins", res.Made())
			}
		})
	}
}
