package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Names of the node manager's metrics.
const (
	NodeInstances        = "gatehouse_node_instances"
	NodeInstanceRestarts = "gatehouse_node_instance_restarts_total"
	NodeInstanceReady    = "gatehouse_node_instance_ready"
	NodeInstanceApplied  = "gatehouse_node_instance_applied_deployment"
	NodeHeartbeats       = "gatehouse_node_heartbeats_total"
)

// NodeInstance is one local instance as the node manager's metrics show
// it.
type NodeInstance struct {
	Name, Group, Process string
	Restarts             int
	Ready                bool
	Applied              uint64
}

// Node is the node manager's metrics. Instance metrics are read from
// instances at every scrape, so that they are never out of date and
// removed instances disappear.
type Node struct {
	instances  func() []NodeInstance
	heartbeats *prometheus.CounterVec

	descInstances, descRestarts, descReady, descApplied *prometheus.Desc
}

// NewNode registers the node manager's metrics on reg.
func NewNode(reg prometheus.Registerer, instances func() []NodeInstance) *Node {
	n := &Node{
		instances: instances,
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NodeHeartbeats,
			Help: "Heartbeats sent to the admin node, by result (ok, error)."}, []string{"result"}),
		descInstances: prometheus.NewDesc(NodeInstances, "Local gateway instances by process state.", []string{"process"}, nil),
		descRestarts:  prometheus.NewDesc(NodeInstanceRestarts, "Restarts of an instance's gateway process by the supervisor.", []string{"instance", "group"}, nil),
		descReady:     prometheus.NewDesc(NodeInstanceReady, "1 when the instance's gateway reports ready.", []string{"instance", "group"}, nil),
		descApplied:   prometheus.NewDesc(NodeInstanceApplied, "The deployment number the instance's gateway reports applied.", []string{"instance", "group"}, nil),
	}
	n.heartbeats.WithLabelValues("ok")
	n.heartbeats.WithLabelValues("error")
	reg.MustRegister(n.heartbeats, n)
	return n
}

// Heartbeat counts a heartbeat by its outcome.
func (n *Node) Heartbeat(ok bool) {
	if ok {
		n.heartbeats.WithLabelValues("ok").Inc()
		return
	}
	n.heartbeats.WithLabelValues("error").Inc()
}

// Describe implements prometheus.Collector.
func (n *Node) Describe(ch chan<- *prometheus.Desc) {
	ch <- n.descInstances
	ch <- n.descRestarts
	ch <- n.descReady
	ch <- n.descApplied
}

// Collect implements prometheus.Collector.
func (n *Node) Collect(ch chan<- prometheus.Metric) {
	byState := map[string]int{}
	for _, in := range n.instances() {
		byState[in.Process]++
		ready := 0.0
		if in.Ready {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(n.descRestarts, prometheus.CounterValue, float64(in.Restarts), in.Name, in.Group)
		ch <- prometheus.MustNewConstMetric(n.descReady, prometheus.GaugeValue, ready, in.Name, in.Group)
		ch <- prometheus.MustNewConstMetric(n.descApplied, prometheus.GaugeValue, float64(in.Applied), in.Name, in.Group)
	}
	for state, count := range byState {
		ch <- prometheus.MustNewConstMetric(n.descInstances, prometheus.GaugeValue, float64(count), state)
	}
}
