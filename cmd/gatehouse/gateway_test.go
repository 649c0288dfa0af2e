package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/pubseal"
)

// A gateway started from a published deployment takes its group from the
// URL unless --group says it, needs the domain key and the publish keys,
// and has one source.
func TestGatewayConfigURLFlags(t *testing.T) {
	const key = "ed25519:hyBzp1yDJ5Se1KA3+DI10YrbvhJtFlPyxY7yyetGCeA="
	const url = "s3://b/prod/groups/payments/current?endpoint=http://127.0.0.1:9000&style=path"
	dir := t.TempDir()
	pk, _ := pubseal.ParseKey(pubseal.NewKey())
	keyFile := filepath.Join(dir, "publish.key")
	if err := pubseal.WriteKeyFile(keyFile, "acme", []*pubseal.Key{pk}); err != nil {
		t.Fatal(err)
	}
	openFile := filepath.Join(dir, "open.key")
	data, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(openFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		wantGroup string
		wantErr   string
	}{
		{"group from the URL", []string{"--config-url", url, "--domain-key", key}, "payments", ""},
		{"group given too", []string{"--config-url", url, "--domain-key", key, "--group", "payments"}, "payments", ""},
		{"groups disagree", []string{"--config-url", url, "--domain-key", key, "--group", "web"}, "", "--group web, but --config-url is the deployment of group payments"},
		{"no group anywhere", []string{"--config-url", "file:///srv/web.json", "--domain-key", key}, "", "--group is required"},
		{"group for another layout", []string{"--config-url", "file:///srv/web.json", "--domain-key", key, "--group", "web"}, "web", ""},
		{"no key", []string{"--config-url", url, "--config-key", keyFile}, "", "--domain-key is required with --config-url"},
		{"no publish key", []string{"--config-url", url, "--domain-key", key}, "", "--config-key is required with --config-url"},
		{"publish key readable by others", []string{"--config-url", url, "--domain-key", key, "--config-key", openFile}, "", "--config-key: publish key file " + openFile + ": mode 0644"},
		{"publish key missing", []string{"--config-url", url, "--domain-key", key, "--config-key", filepath.Join(dir, "none")}, "", "--config-key: publish key file"},
		{"publish key without a URL", []string{"--config", "gw.yaml", "--config-key", keyFile}, "", "--config-key is for --config-url"},
		{"bad key", []string{"--config-url", url, "--domain-key", "ed25519:short"}, "", "--domain-key"},
		{"with a file", []string{"--config-url", url, "--domain-key", key, "--config", "gw.yaml"}, "", "mutually exclusive"},
		{"with a node manager", []string{"--config-url", url, "--domain-key", key, "--node-manager", "http://127.0.0.1:8091"}, "", "mutually exclusive"},
		{"poll without a URL", []string{"--config", "gw.yaml", "--config-poll", "1s"}, "", "--config-poll is for --config-url"},
		{"key without a source", []string{"--config", "gw.yaml", "--domain-key", key}, "", "--domain-key is for --node-manager and --config-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := gatewayCommand(deploy.FeatureLevel)
			args := tc.args
			if !slices.Contains(args, "--config-key") && slices.Contains(args, "--config-url") && tc.name != "no publish key" {
				args = append(args, "--config-key", keyFile)
			}
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			var opts gateway.Options
			fs := cmd.Flags()
			opts.ConfigURL, _ = fs.GetString("config-url")
			opts.ConfigPath, _ = fs.GetString("config")
			opts.NodeManager, _ = fs.GetString("node-manager")
			opts.Group, _ = fs.GetString("group")
			opts.ConfigPoll, _ = fs.GetDuration("config-poll")
			domainKey, _ := fs.GetString("domain-key")
			err := publishedFlags(cmd, &opts, domainKey)
			if err == nil {
				err = nodeManagerFlags(cmd, &opts, domainKey)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && opts.Group != tc.wantGroup:
				t.Errorf("group %q, want %q", opts.Group, tc.wantGroup)
			case tc.wantErr == "" && (opts.PublishDomain != "acme" || len(opts.PublishKeys) != 1 || opts.PublishKeys[0].ID != pk.ID):
				t.Errorf("publish keys %q %v", opts.PublishDomain, opts.PublishKeys)
			}
		})
	}
}
