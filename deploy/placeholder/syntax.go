package placeholder

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

var namePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,127}$`)

// ValidName reports whether name can be the name of a setting or a
// secret: 1 to 128 upper-case ASCII letters, digits and "_", starting with
// a letter. The stores of settings and secrets use it too, so that every
// value they hold can be named by a placeholder.
func ValidName(name string) bool {
	return namePattern.MatchString(name)
}

const (
	open         = "${"
	escape       = "$${"
	secretPrefix = "secret:"
	defaultSep   = ":-"
)

// spec is one placeholder as written.
type spec struct {
	name       string
	secret     bool
	def        string
	hasDefault bool
}

// expand returns s with the escapes undone and every placeholder replaced
// by what replace returns for it. Escapes are read first, left to right,
// so "$${X}" is the text "${X}". Messages locate a malformed placeholder
// by its character position but never quote it, as the field may hold a
// secret written in clear.
func expand(s string, replace func(spec) string) (string, error) {
	if !strings.Contains(s, open) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	rest := s
	for {
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, escape):
			b.WriteString(open)
			rest = rest[len(escape):]
		case strings.HasPrefix(rest, open):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", syntaxError(s, rest, `"${" without a closing "}"`)
			}
			sp, msg := parseBody(rest[len(open):end])
			if msg != "" {
				return "", syntaxError(s, rest, msg)
			}
			b.WriteString(replace(sp))
			rest = rest[end+1:]
		default:
			b.WriteByte('$')
			rest = rest[1:]
		}
	}
}

// parseBody reads what is between "${" and "}", returning a message when
// it is not a placeholder.
func parseBody(body string) (spec, string) {
	var sp spec
	body, sp.secret = strings.CutPrefix(body, secretPrefix)
	if sp.secret {
		sp.name = body
		if strings.Contains(body, ":") {
			return sp, "a secret has no default"
		}
	} else {
		sp.name, sp.def, sp.hasDefault = strings.Cut(body, defaultSep)
	}
	switch {
	case sp.name == "":
		return sp, "no name"
	case strings.Contains(sp.name, ":"):
		return sp, `a default is written ${NAME:-default}; a secret ${secret:NAME}`
	case !ValidName(sp.name):
		return sp, `a name is 1 to 128 upper-case letters, digits or "_", starting with a letter`
	}
	return sp, ""
}

// syntaxError locates the placeholder that starts rest, a suffix of s, by
// its position in characters counted from 1.
func syntaxError(s, rest, msg string) error {
	at := utf8.RuneCountInString(s[:len(s)-len(rest)]) + 1
	return fmt.Errorf("malformed placeholder at character %d: %s", at, msg)
}

// isSecretPlaceholder reports whether s is exactly one ${secret:NAME}
// placeholder, which is what a secret field may hold in a package.
func isSecretPlaceholder(s string) bool {
	name, ok := strings.CutPrefix(s, open+secretPrefix)
	if !ok {
		return false
	}
	name, ok = strings.CutSuffix(name, "}")
	return ok && ValidName(name)
}
