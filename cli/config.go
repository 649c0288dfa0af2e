package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Environment variables of the CLI.
const (
	envConfig = "GATEHOUSE_CONFIG"
	envAddr   = "GATEHOUSE_ADDR"
	envToken  = "GATEHOUSE_TOKEN"
	envCACert = "GATEHOUSE_CACERT"
)

// savedLogin is the CLI's file, written by `gatehouse login`. It holds a
// bearer token, hence mode 0600 in a 0700 directory.
type savedLogin struct {
	Address string `json:"address"`
	User    string `json:"user,omitempty"`
	Token   string `json:"token,omitempty"`
	// CACert is the PEM of the domain CA the address is trusted by; empty
	// when it is trusted by the system roots.
	CACert string `json:"ca_cert,omitempty"`
}

// configPath is $GATEHOUSE_CONFIG, else cli.json in the XDG configuration
// directory. XDG is followed on every system, macOS included, because
// that is where users of command-line tools look.
func (a *app) configPath() (string, error) {
	if p := a.getenv(envConfig); p != "" {
		return p, nil
	}
	dir := a.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := a.getenv("HOME")
		if home == "" {
			var err error
			if home, err = os.UserHomeDir(); err != nil {
				return "", fmt.Errorf("locate the CLI configuration: %w (set $%s)", err, envConfig)
			}
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "gatehouse", "cli.json"), nil
}

// loadLogin reads the saved login; a missing file is an empty one.
func (a *app) loadLogin() (savedLogin, string, error) {
	path, err := a.configPath()
	if err != nil {
		return savedLogin{}, "", err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return savedLogin{}, path, nil
	}
	if err != nil {
		return savedLogin{}, path, fmt.Errorf("read CLI configuration: %w", err)
	}
	var l savedLogin
	if err := json.Unmarshal(data, &l); err != nil {
		return savedLogin{}, path, fmt.Errorf("read CLI configuration %s: %w", path, err)
	}
	return l, path, nil
}

// saveLogin replaces the file at path by l. It writes a new file and
// renames it over the old one, so that an interrupted write cannot leave
// half a file, and the mode is 0600 whatever the old file's was.
func saveLogin(path string, l savedLogin) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save CLI configuration: %w", err)
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("save CLI configuration: %w", err)
	}
	f, err := os.CreateTemp(dir, ".cli-*.json")
	if err != nil {
		return fmt.Errorf("save CLI configuration: %w", err)
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("save CLI configuration: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save CLI configuration: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save CLI configuration: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save CLI configuration: %w", err)
	}
	return nil
}

// target is where and how to connect.
type target struct {
	addr  string
	token string
	caPEM []byte
}

// resolve finds the address, token and CA: each from its flag, else its
// environment variable, else the saved login. Flags come first because
// they are the most specific to one invocation, and the environment next
// because it is how scripts and CI configure a session.
//
// The saved token and CA belong to the saved address: they are used only
// when the address resolved is that one, so that `--addr other` never
// sends the saved token to another server, nor trusts it by the wrong CA.
func (a *app) resolve() (target, error) {
	saved, _, err := a.loadLogin()
	if err != nil {
		return target{}, err
	}
	t := target{addr: first(a.addr, a.getenv(envAddr), saved.Address)}
	if t.addr == "" {
		return target{}, fmt.Errorf("no admin node address: run `gatehouse login --addr URL`, or use --addr or $%s", envAddr)
	}
	same := savedFor(t.addr, saved.Address)
	t.token = first(a.token, a.getenv(envToken))
	if t.token == "" && same {
		t.token = saved.Token
	}
	switch caFile := first(a.caCert, a.getenv(envCACert)); {
	case caFile != "":
		if t.caPEM, err = os.ReadFile(caFile); err != nil {
			return target{}, fmt.Errorf("read the CA certificate: %w", err)
		}
	case same && saved.CACert != "":
		t.caPEM = []byte(saved.CACert)
	}
	return t, nil
}

// savedFor says whether the saved login, made at the addresses saved,
// belongs to addr: each address of addr (one, or several separated by
// commas) is one of the saved, whatever their spelling. Giving one admin
// node of a saved list of a domain's admin nodes keeps its token and CA.
func savedFor(addr, saved string) bool {
	if saved == "" {
		return false
	}
	known := normalAddresses(saved)
	for _, a := range normalAddresses(addr) {
		if !slices.Contains(known, a) {
			return false
		}
	}
	return true
}

// normalAddresses splits a comma-separated list of addresses and makes
// the spellings of one address compare equal.
func normalAddresses(addr string) []string {
	list := strings.Split(addr, ",")
	for i, a := range list {
		a = strings.TrimSpace(a)
		if !strings.Contains(a, "://") {
			a = "https://" + a
		}
		list[i] = strings.ToLower(strings.TrimSuffix(a, "/"))
	}
	return list
}

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
