package gateway

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/jsonnames"
)

// The status port's /status names its fields in snake_case, upstream
// targets included.
func TestStatusJSONNamesSnakeCase(t *testing.T) {
	for _, p := range jsonnames.Problems(Report{}) {
		t.Error(p)
	}
}
