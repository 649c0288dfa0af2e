package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNodeMetricsFollowInstances(t *testing.T) {
	reg := prometheus.NewRegistry()
	instances := []NodeInstance{
		{Name: "a", Group: "g", Process: "running", Restarts: 2, Ready: true, Applied: 7},
		{Name: "b", Group: "g", Process: "crash-loop", Restarts: 9},
	}
	n := NewNode(reg, func() []NodeInstance { return instances })
	n.Heartbeat(true)
	n.Heartbeat(false)
	want := `
# HELP gatehouse_node_instance_restarts_total Restarts of an instance's gateway process by the supervisor.
# TYPE gatehouse_node_instance_restarts_total counter
gatehouse_node_instance_restarts_total{group="g",instance="a"} 2
gatehouse_node_instance_restarts_total{group="g",instance="b"} 9
# HELP gatehouse_node_instances Local gateway instances by process state.
# TYPE gatehouse_node_instances gauge
gatehouse_node_instances{process="crash-loop"} 1
gatehouse_node_instances{process="running"} 1
# HELP gatehouse_node_heartbeats_total Heartbeats sent to the admin node, by result (ok, error).
# TYPE gatehouse_node_heartbeats_total counter
gatehouse_node_heartbeats_total{result="error"} 1
gatehouse_node_heartbeats_total{result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), NodeInstanceRestarts, NodeInstances, NodeHeartbeats); err != nil {
		t.Error(err)
	}
	// A removed instance disappears at the next scrape.
	instances = instances[:1]
	if n := testutil.CollectAndCount(reg, NodeInstanceReady); n != 1 {
		t.Errorf("%d ready series after a removal, want 1", n)
	}
}
