package policy

import (
	"fmt"
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
