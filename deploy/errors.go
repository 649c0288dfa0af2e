package deploy

import (
	"fmt"
	"strings"
)

// FieldError is one problem in a configuration. Path locates the field in
// the form "services[2].routes[0].paths[1]", using the YAML and JSON field
// names, so that a user can find it in the file and an API client can
// attach it to a form field.
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errors is every problem found in a configuration, in the order of the
// file, so that a user fixes them all in one pass instead of one per try.
type Errors []FieldError

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Add records a problem at path.
func (es *Errors) Add(path, message string) {
	*es = append(*es, FieldError{Path: path, Message: message})
}

// Addf records a problem at path with a formatted message.
func (es *Errors) Addf(path, format string, args ...any) {
	es.Add(path, fmt.Sprintf(format, args...))
}

// Err returns es, or nil when there are no problems. Returning an empty
// Errors as an error would give a non-nil error interface.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
