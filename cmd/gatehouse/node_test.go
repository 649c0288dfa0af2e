package main

import "testing"

// node join takes the admin node's address as --addr, like the CLI, and
// still reads its old spelling --admin.
func TestNodeJoinAddr(t *testing.T) {
	for _, flag := range []string{"--addr", "--admin"} {
		cmd := nodeJoinCommand()
		if err := cmd.ParseFlags([]string{flag, "https://admin:8090"}); err != nil {
			t.Fatalf("%s: %v", flag, err)
		}
		if f := cmd.Flags().Lookup("addr"); f == nil || f.Value.String() != "https://admin:8090" {
			t.Errorf("%s: --addr is %+v", flag, f)
		}
	}
}

// node run takes the admin nodes as --addr, a list, and reads --admin too.
func TestNodeRunAddr(t *testing.T) {
	const list = "https://admin-a:8090,https://admin-b:8090"
	for _, flag := range []string{"--addr", "--admin"} {
		cmd := nodeRunCommand()
		if err := cmd.ParseFlags([]string{flag, list}); err != nil {
			t.Fatalf("%s: %v", flag, err)
		}
		if f := cmd.Flags().Lookup("addr"); f == nil || f.Value.String() != list {
			t.Errorf("%s: --addr is %+v", flag, f)
		}
	}
}
