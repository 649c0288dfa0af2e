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
	n.TrafficSpool(3, 4096, 2)
	n.TrafficSent(SendRefused)
	want = `
# HELP gatehouse_node_traffic_dropped_batches_total Traffic batches dropped since the node joined: the spool was past its bounds, or the admin node refused them.
# TYPE gatehouse_node_traffic_dropped_batches_total counter
gatehouse_node_traffic_dropped_batches_total 2
# HELP gatehouse_node_traffic_spool_batches Traffic batches spooled, waiting for the admin node's acknowledgement.
# TYPE gatehouse_node_traffic_spool_batches gauge
gatehouse_node_traffic_spool_batches 3
# HELP gatehouse_node_traffic_spool_bytes Size of the spooled traffic batches, in bytes.
# TYPE gatehouse_node_traffic_spool_bytes gauge
gatehouse_node_traffic_spool_bytes 4096
# HELP gatehouse_node_traffic_sends_total Traffic batches sent to the admin node, by result (ok, error, refused).
# TYPE gatehouse_node_traffic_sends_total counter
gatehouse_node_traffic_sends_total{result="error"} 0
gatehouse_node_traffic_sends_total{result="ok"} 0
gatehouse_node_traffic_sends_total{result="refused"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), NodeTrafficDropped, NodeTrafficSpoolBatches, NodeTrafficSpoolBytes, NodeTrafficSends); err != nil {
		t.Error(err)
	}
	// A removed instance disappears at the next scrape.
	instances = instances[:1]
	if n := testutil.CollectAndCount(reg, NodeInstanceReady); n != 1 {
		t.Errorf("%d ready series after a removal, want 1", n)
	}
}
