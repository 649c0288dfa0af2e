package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the node manager's metrics.
const (
	NodeInstances        = "gatehouse_node_instances"
	NodeInstanceRestarts = "gatehouse_node_instance_restarts_total"
	NodeInstanceReady    = "gatehouse_node_instance_ready"
	NodeInstanceApplied  = "gatehouse_node_instance_applied_deployment"
	NodeHeartbeats       = "gatehouse_node_heartbeats_total"

	NodeTrafficReads        = "gatehouse_node_traffic_reads_total"
	NodeTrafficSends        = "gatehouse_node_traffic_sends_total"
	NodeTrafficSpoolBatches = "gatehouse_node_traffic_spool_batches"
	NodeTrafficSpoolBytes   = "gatehouse_node_traffic_spool_bytes"
	NodeTrafficDropped      = "gatehouse_node_traffic_dropped_batches_total"
)

// Results of a traffic batch sent to the admin node (NodeTrafficSends).
const (
	SendOK    = "ok"
	SendError = "error"
	// SendRefused: the admin node will never store the batch, which is
	// dropped.
	SendRefused = "refused"
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
	reads      *prometheus.CounterVec
	sends      *prometheus.CounterVec

	// The spool's state is set by the node manager after each change;
	// dropped is the count kept in its store since the node joined, so it
	// is a counter that survives restarts.
	spoolBatches, spoolBytes atomic.Int64
	dropped                  atomic.Uint64

	descInstances, descRestarts, descReady, descApplied *prometheus.Desc
	descSpoolBatches, descSpoolBytes, descDropped       *prometheus.Desc
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
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NodeTrafficReads,
			Help: "Readings of the gateways' traffic counts (GET /traffic), by result (ok, error)."}, []string{"result"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NodeTrafficSends,
			Help: "Traffic batches sent to the admin node, by result (ok, error, refused)."}, []string{"result"}),
		descSpoolBatches: prometheus.NewDesc(NodeTrafficSpoolBatches, "Traffic batches spooled, waiting for the admin node's acknowledgement.", nil, nil),
		descSpoolBytes:   prometheus.NewDesc(NodeTrafficSpoolBytes, "Size of the spooled traffic batches, in bytes.", nil, nil),
		descDropped: prometheus.NewDesc(NodeTrafficDropped,
			"Traffic batches dropped since the node joined: the spool was past its bounds, or the admin node refused them.", nil, nil),
	}
	n.heartbeats.WithLabelValues("ok")
	n.heartbeats.WithLabelValues("error")
	n.reads.WithLabelValues("ok")
	n.reads.WithLabelValues("error")
	for _, r := range []string{SendOK, SendError, SendRefused} {
		n.sends.WithLabelValues(r)
	}
	reg.MustRegister(n.heartbeats, n.reads, n.sends, n)
	return n
}

// TrafficRead counts a reading of a gateway's traffic counts.
func (n *Node) TrafficRead(ok bool) {
	if ok {
		n.reads.WithLabelValues("ok").Inc()
		return
	}
	n.reads.WithLabelValues("error").Inc()
}

// TrafficSent counts a batch sent to the admin node by its result
// (SendOK, SendError, SendRefused).
func (n *Node) TrafficSent(result string) { n.sends.WithLabelValues(result).Inc() }

// TrafficSpool records the spool's state: batches and bytes waiting, and
// the batches dropped since the node joined.
func (n *Node) TrafficSpool(batches int, bytes int64, dropped uint64) {
	n.spoolBatches.Store(int64(batches))
	n.spoolBytes.Store(bytes)
	n.dropped.Store(dropped)
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
	ch <- n.descSpoolBatches
	ch <- n.descSpoolBytes
	ch <- n.descDropped
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
	ch <- prometheus.MustNewConstMetric(n.descSpoolBatches, prometheus.GaugeValue, float64(n.spoolBatches.Load()))
	ch <- prometheus.MustNewConstMetric(n.descSpoolBytes, prometheus.GaugeValue, float64(n.spoolBytes.Load()))
	ch <- prometheus.MustNewConstMetric(n.descDropped, prometheus.CounterValue, float64(n.dropped.Load()))
}
