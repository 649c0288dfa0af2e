package ratelimit

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		config string
		want   []string
	}{
		{`{}`, []string{"limits: required"}},
		{`{"limits": []}`, []string{"limits: at least one limit is required"}},
		{`{"limits": {"requests": 1}}`, []string{"limits: must be a list, got a mapping"}},
		{`{"limits": [{"requests": 0, "window": "minute"}]}`, []string{"limits[0].requests: must be between 1 and 2147483647"}},
		{`{"limits": [{"window": "minute"}, {"requests": 5}]}`, []string{"limits[0].requests: required", "limits[1].window: required"}},
		{`{"limits": [{"requests": 5, "window": "day"}]}`, []string{`limits[0].window: must be "second", "minute", "hour" or a whole number of seconds from 1s to 24h such as "10s"`}},
		{`{"limits": [{"requests": 5, "window": "1500ms"}]}`, []string{`limits[0].window: must be "second", "minute", "hour" or a whole number of seconds from 1s to 24h such as "10s"`}},
		{`{"limits": [{"requests": 5, "window": 60}]}`, []string{`limits[0].window: must be "second", "minute", "hour" or a whole number of seconds from 1s to 24h such as "10s"`}},
		{`{"limits": [{"requests": 5, "window": "minute"}, {"requests": 9, "window": "60s"}]}`, []string{"limits[1].window: same window as limits[0]: keep the lower limit"}},
		{`{"limits": [{"requests": 5, "window": "minute", "burst": 2}]}`, []string{"limits[0].burst: unknown field"}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "key": "user"}`, []string{`key: must be "consumer", "ip" or "header"`}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "key": "header"}`, []string{"header_name: required"}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "key": "header", "header_name": "X Tenant"}`, []string{"header_name: must be an HTTP header name"}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "header_name": "X-Tenant"}`, []string{`header_name: only with key "header"`}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "mode": "cluster"}`, []string{`mode: must be "local", "group" or "redis"`}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "sync_interval": "1s"}`, []string{`sync_interval: only with mode "group" or "redis"`}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "mode": "group", "sync_interval": "1ms"}`, []string{"sync_interval: must be between 10ms and 10s"}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "mode": "redis"}`, []string{`redis: required with mode "redis"`}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "redis": {"address": "r:6379"}}`, []string{`redis: only with mode "redis"`}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "mode": "redis", "redis": {"db": -1, "timeout": "1h", "user": "x"}}`, []string{
			"redis.address: required",
			"redis.db: must be between 0 and 65535",
			"redis.timeout: must be between 1ms and 10s",
			"redis.user: unknown field",
		}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "mode": "redis", "redis": {"address": "redis.internal"}}`, []string{`redis.address: must be host:port, such as "redis.internal:6379"`}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "headers": "yes"}`, []string{"headers: must be true or false, got a string"}},
		{`{"limits": [{"requests": 5, "window": "minute"}], "per": "1m"}`, []string{"per: unknown field"}},
	}
	for _, tt := range tests {
		got := policytest.Errors(t, kind, tt.config, env(t, nil))
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.config, strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
		}
	}
}

func TestConfigAccepted(t *testing.T) {
	for _, js := range []string{
		`{"limits": [{"requests": 5, "window": "second"}, {"requests": 100, "window": "10s"}, {"requests": 1000, "window": "hour"}]}`,
		`{"limits": [{"requests": 5, "window": "24h"}], "key": "header", "header_name": "X-Api-Key", "headers": false, "budget": "orders"}`,
		`{"limits": [{"requests": 5, "window": "minute"}], "mode": "group", "sync_interval": "250ms"}`,
		`{"limits": [{"requests": 5, "window": "minute"}], "mode": "redis", "redis": {"address": "10.0.0.9:6379", "password": "pw", "db": 2, "timeout": "50ms"}}`,
	} {
		// Validation builds with no resources: nothing is started.
		policytest.Build(t, kind, js, policytest.Env(nil))
	}
}

// Policies whose configurations differ only in headers share their
// counters, and so does a deployment that keeps the configuration;
// any other difference gives counters of their own.
func TestCountersSharedByIdentity(t *testing.T) {
	e := env(t, nil)
	base := `{"limits": [{"requests": 2, "window": "minute"}], "key": "ip"`
	p1 := policytest.Build(t, kind, base+`}`, e)
	p2 := policytest.Build(t, kind, base+`, "headers": false}`, e)
	p3 := policytest.Build(t, kind, base+`, "budget": "other"}`, e)
	p4 := policytest.Build(t, kind, `{"limits": [{"requests": 3, "window": "minute"}], "key": "ip"}`, e)
	if storeOf(p1) != storeOf(p2) {
		t.Error("headers changed the counters")
	}
	if storeOf(p1) == storeOf(p3) || storeOf(p1) == storeOf(p4) {
		t.Error("a different budget or limit shares the counters")
	}
	req := from("192.0.2.1")
	at(p1, req, t0)
	at(p1, req, t0)
	if _, ok := at(p2, req, t0); ok {
		t.Error("redeployed policy forgot the counts")
	}
	if _, ok := at(p3, req, t0); !ok {
		t.Error("policy of another budget refused")
	}
}
