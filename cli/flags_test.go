package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// A renamed flag's old spelling sets the new flag, and help shows only
// the new one.
func TestRenamedFlags(t *testing.T) {
	root := &cobra.Command{Use: "gatehouse"}
	root.AddCommand(newApp(testEnv(nil, "")).commands()...)
	tests := []struct {
		path      []string
		old, name string
		value     string
		helpLacks string
		helpHolds string
	}{
		{[]string{"group", "update"}, "--environment", "env", "prod", "--environment", "--env string"},
		{[]string{"group", "list"}, "--admin", "addr", "https://a:8090", "--admin", "--addr string"},
		{[]string{"status"}, "--admin-addr", "addr", "https://a:8090", "--admin-addr", "--addr string"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.path, " ")+" "+tt.old, func(t *testing.T) {
			cmd, _, err := root.Find(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.ParseFlags([]string{tt.old, tt.value}); err != nil {
				t.Fatalf("parse %s: %v", tt.old, err)
			}
			if f := cmd.Flags().Lookup(tt.name); f == nil || f.Value.String() != tt.value || !f.Changed {
				t.Errorf("--%s after %s %s: %+v", tt.name, tt.old, tt.value, f)
			}
			var help bytes.Buffer
			cmd.SetOut(&help)
			if err := cmd.Help(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(help.String(), tt.helpLacks+" ") || !strings.Contains(help.String(), tt.helpHolds) {
				t.Errorf("help:\n%s", help.String())
			}
		})
	}
}
