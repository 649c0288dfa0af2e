package fieldpath

import "testing"

func TestPaths(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Join("", "services"), "services"},
		{Join("services[2]", "routes"), "services[2].routes"},
		{Join("config", "a.b"), `config["a.b"]`},
		{Join("headers", ""), `headers[""]`},
		{Join("", "x y"), `["x y"]`},
		{Join("rename", "X-Api_Key"), "rename.X-Api_Key"},
		{Index("services", 2), "services[2]"},
		{Index(Join("services[2]", "routes"), 0), "services[2].routes[0]"},
		{Under("services[0].policies[1].config", "limits[0].window"), "services[0].policies[1].config.limits[0].window"},
		{Under("config", `["a.b"]`), `config["a.b"]`},
		{Under("config", ""), "config"},
		{Under("", "limits"), "limits"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
