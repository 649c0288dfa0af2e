package api

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/jsonnames"
)

// Every body of the admin and agent APIs names its fields in snake_case.
func TestJSONNamesSnakeCase(t *testing.T) {
	var bodies []any
	for _, rt := range (&Server{}).routes() {
		bodies = append(bodies, rt.in, rt.out)
	}
	for _, p := range jsonnames.Problems(bodies...) {
		t.Error(p)
	}
}
