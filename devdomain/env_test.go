package devdomain

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestEnvFileSourced writes dev.env with values a shell would mangle if
// they were not quoted, sources it in a real bash and reads back what the
// shell set, and what ReadEnvFile reads.
func TestEnvFileSourced(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash here")
	}
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin dir")
	vars := []envVar{
		{"GATEHOUSE_ADDR", "https://127.0.0.1:8090"},
		{"GATEHOUSE_TOKEN", `gh_it's $HOME "x" \n; ls`},
		{"GATEHOUSE_CACERT", filepath.Join(dir, "a dir", "ca.crt")},
	}
	path := filepath.Join(dir, "dev.env")
	if err := writeEnvFile(path, vars, binDir); err != nil {
		t.Fatal(err)
	}
	read, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vars {
		script := `source "$1" && printf %s "$` + v.name + `"`
		out, err := exec.Command("bash", "-c", script, "bash", path).CombinedOutput()
		if err != nil {
			t.Fatalf("source dev.env: %v\n%s", err, out)
		}
		if string(out) != v.value {
			t.Errorf("after source, %s = %q, want %q", v.name, out, v.value)
		}
		if read[v.name] != v.value {
			t.Errorf("ReadEnvFile: %s = %q, want %q", v.name, read[v.name], v.value)
		}
	}
	out, err := exec.Command("bash", "-c", `PATH=/usr/bin:/bin; source "$1" && printf %s "$PATH"`, "bash", path).CombinedOutput()
	if err != nil {
		t.Fatalf("source dev.env: %v\n%s", err, out)
	}
	if want := binDir + ":/usr/bin:/bin"; string(out) != want {
		t.Errorf("after source, PATH = %q, want %q", out, want)
	}
}

func TestShellUnquote(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "plain", want: "plain"},
		{in: "''", want: ""},
		{in: `'a'\''b'`, want: "a'b"},
		{in: `'unterminated`, bad: true},
		{in: `$HOME`, bad: true},
	} {
		got, err := shellUnquote(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("shellUnquote(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
