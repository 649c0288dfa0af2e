package localapi

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/jsonnames"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The local API's bodies, and the traffic the gateways hand over, name
// their fields in snake_case.
func TestJSONNamesSnakeCase(t *testing.T) {
	for _, p := range jsonnames.Problems(DeploymentAnswer{}, Gossip{}, Report{}, InstanceList{}, ErrorBody{},
		traffic.Snapshot{}, traffic.Batch{}, traffic.Ack{}) {
		t.Error(p)
	}
}
