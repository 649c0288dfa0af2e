package devdomain

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// envVar is one line of dev.env.
type envVar struct{ name, value string }

// writeEnvFile writes vars as `export NAME='value'` lines, so that a
// user's `source dev.env` sets them in their shell whatever the values
// hold. pathDir, when set, is put first on PATH, so that the `gatehouse`
// that made the domain is the one the shell runs.
func writeEnvFile(path string, vars []envVar, pathDir string) error {
	var b bytes.Buffer
	b.WriteString("# gatehouse dev: source this file to use the CLI with this domain\n")
	for _, v := range vars {
		fmt.Fprintf(&b, "export %s=%s\n", v.name, shellQuote(v.value))
	}
	if pathDir != "" {
		fmt.Fprintf(&b, "export PATH=%s:\"$PATH\"\n", shellQuote(pathDir))
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// shellQuote quotes s for a POSIX shell: inside single quotes nothing is
// special but the single quote itself, which is closed, escaped and
// reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ReadEnvFile reads the GATEHOUSE_ variables of a dev.env written by Run:
// `export NAME='value'` lines, as a shell would set them. Lines of the
// older `NAME=value` form are read too, so that a domain made by an
// earlier version still opens.
func ReadEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "GATEHOUSE_") {
			continue
		}
		v, err := shellUnquote(value)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", path, n, name, err)
		}
		vars[name] = v
	}
	return vars, sc.Err()
}

// shellUnquote undoes shellQuote; an unquoted word is taken as it is.
func shellUnquote(s string) (string, error) {
	if !strings.HasPrefix(s, "'") {
		if strings.ContainsAny(s, "'\"\\$` \t") {
			return "", fmt.Errorf("unquoted value with shell syntax: %q", s)
		}
		return s, nil
	}
	var b strings.Builder
	for s != "" {
		if !strings.HasPrefix(s, "'") {
			return "", fmt.Errorf("not a quoted value: %q", s)
		}
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("unterminated quote")
		}
		b.WriteString(s[1 : 1+end])
		s = s[2+end:]
		if rest, ok := strings.CutPrefix(s, `\'`); ok {
			b.WriteByte('\'')
			s = rest
		}
	}
	return b.String(), nil
}
