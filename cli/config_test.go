package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigPath(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"GATEHOUSE_CONFIG first", map[string]string{envConfig: "/etc/gh.json", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/etc/gh.json"},
		{"XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/gatehouse/cli.json"},
		{"home", map[string]string{"HOME": "/h"}, "/h/.config/gatehouse/cli.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newApp(testEnv(tt.vars, "")).configPath()
			if err != nil || got != tt.want {
				t.Fatalf("configPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	flagCA := filepath.Join(dir, "flag.pem")
	envCA := filepath.Join(dir, "env.pem")
	writeFile(t, flagCA, "flag CA")
	writeFile(t, envCA, "env CA")
	saved := savedLogin{Address: "https://saved:8090", User: "alice", Token: "saved-token", CACert: "saved CA"}
	savedList := savedLogin{Address: "https://saved:8090,https://saved-b:8090", User: "alice", Token: "saved-token", CACert: "saved CA"}

	tests := []struct {
		name              string
		flagAddr, flagTok string
		flagCA            string
		// saved is the saved login, saved when nil.
		saved   *savedLogin
		vars    map[string]string
		want    target
		wantErr string
	}{
		{
			name: "saved login",
			want: target{addr: "https://saved:8090", token: "saved-token", caPEM: []byte("saved CA")},
		},
		{
			name: "environment over the file",
			vars: map[string]string{envAddr: "https://env:8090", envToken: "env-token", envCACert: envCA},
			want: target{addr: "https://env:8090", token: "env-token", caPEM: []byte("env CA")},
		},
		{
			name:     "flags over the environment",
			flagAddr: "https://flag:8090", flagTok: "flag-token", flagCA: flagCA,
			vars: map[string]string{envAddr: "https://env:8090", envToken: "env-token", envCACert: envCA},
			want: target{addr: "https://flag:8090", token: "flag-token", caPEM: []byte("flag CA")},
		},
		{
			name: "token from the environment, the rest from the file",
			vars: map[string]string{envToken: "env-token"},
			want: target{addr: "https://saved:8090", token: "env-token", caPEM: []byte("saved CA")},
		},
		{
			// The saved token and CA are for the saved address only.
			name:     "another address gets neither the saved token nor CA",
			flagAddr: "https://other:8090",
			want:     target{addr: "https://other:8090"},
		},
		{
			name:     "the saved address spelt differently",
			flagAddr: "SAVED:8090/",
			want:     target{addr: "SAVED:8090/", token: "saved-token", caPEM: []byte("saved CA")},
		},
		{
			name:  "a saved list of admin nodes",
			saved: &savedList,
			want:  target{addr: savedList.Address, token: "saved-token", caPEM: []byte("saved CA")},
		},
		{
			name:     "one admin node of the saved list",
			saved:    &savedList,
			flagAddr: "https://saved-b:8090",
			want:     target{addr: "https://saved-b:8090", token: "saved-token", caPEM: []byte("saved CA")},
		},
		{
			name:     "the saved list in another order and spelling",
			saved:    &savedList,
			flagAddr: "saved-b:8090/, https://SAVED:8090",
			want:     target{addr: "saved-b:8090/, https://SAVED:8090", token: "saved-token", caPEM: []byte("saved CA")},
		},
		{
			name:     "a list with an address not saved gets neither the saved token nor CA",
			saved:    &savedList,
			flagAddr: "https://saved:8090,https://other:8090",
			want:     target{addr: "https://saved:8090,https://other:8090"},
		},
		{
			name:    "missing CA file",
			flagCA:  filepath.Join(dir, "missing.pem"),
			wantErr: "read the CA certificate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cli.json")
			l := saved
			if tt.saved != nil {
				l = *tt.saved
			}
			if err := saveLogin(path, l); err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{envConfig: path}
			for k, v := range tt.vars {
				vars[k] = v
			}
			a := newApp(testEnv(vars, ""))
			a.addr, a.token, a.caCert = tt.flagAddr, tt.flagTok, tt.flagCA
			got, err := a.resolve()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.addr != tt.want.addr || got.token != tt.want.token || string(got.caPEM) != string(tt.want.caPEM) {
				t.Errorf("resolve = {%s %s %q}, want {%s %s %q}", got.addr, got.token, got.caPEM, tt.want.addr, tt.want.token, tt.want.caPEM)
			}
		})
	}
}

func TestSaveLoginPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "gatehouse")
	path := filepath.Join(dir, "cli.json")
	if err := saveLogin(path, savedLogin{Address: "https://a", Token: "t1"}); err != nil {
		t.Fatal(err)
	}
	// A file made readable by hand is tightened by the next save.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := saveLogin(path, savedLogin{Address: "https://a", Token: "t2"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	got, _, err := newApp(testEnv(map[string]string{envConfig: path}, "")).loadLogin()
	if err != nil || got.Token != "t2" {
		t.Fatalf("loadLogin = %+v, %v", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v, %v; want cli.json alone", entries, err)
	}
}
