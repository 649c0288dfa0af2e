package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// ConfigError is a problem in a policy's configuration at Path, relative
// to the policy's config ("limits[0].window"; empty for the config as a
// whole). The configuration model prefixes the policy's own path.
type ConfigError struct {
	Path    string
	Message string
}

func (e ConfigError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// ConfigErrors is every problem of one policy's configuration.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Add records a problem at path.
func (es *ConfigErrors) Add(path, message string) {
	*es = append(*es, ConfigError{Path: path, Message: message})
}

// Addf records a problem at path with a formatted message.
func (es *ConfigErrors) Addf(path, format string, args ...any) {
	es.Add(path, fmt.Sprintf(format, args...))
}

// Err returns es, or nil without problems.
func (es ConfigErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Join returns the path of field inside path. A key that is not a plain
// word is quoted, as the configuration decoder does: config["a.b"].
func Join(path, field string) string {
	switch {
	case field == "":
		return path
	case !plainKey(field):
		return path + "[" + strconv.Quote(field) + "]"
	case path == "":
		return field
	}
	return path + "." + field
}

// Under returns the path sub (itself a path, such as "limits[0].window"
// or a Join result) inside path.
func Under(path, sub string) string {
	switch {
	case sub == "":
		return path
	case path == "":
		return sub
	case sub[0] == '[':
		return path + sub
	}
	return path + "." + sub
}

func plainKey(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Index returns the path of element i of the list at path.
func Index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}
