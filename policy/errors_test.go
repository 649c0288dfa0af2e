package policy

import "testing"

func TestPaths(t *testing.T) {
	tests := []struct{ got, want string }{
		{Join("", "limits"), "limits"},
		{Join("limits[0]", "window"), "limits[0].window"},
		{Join("headers", "X-Ok"), "headers.X-Ok"},
		{Join("headers", "Bad Name"), `headers["Bad Name"]`},
		{Join("", "a.b"), `["a.b"]`},
		{Join("x", ""), "x"},
		{Under("services[0].policies[1].config", "limits[0].window"), "services[0].policies[1].config.limits[0].window"},
		{Under("global_policies[0].config", `["a.b"]`), `global_policies[0].config["a.b"]`},
		{Under("global_policies[0].config", ""), "global_policies[0].config"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}
