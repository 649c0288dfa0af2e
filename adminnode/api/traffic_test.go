package api

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// sent is one simulated request through a gateway.
type sent struct {
	instance, route string
	status          int
	latency         time.Duration
}

// batchOf counts requests as a node manager's batch would.
func batchOf(node string, seq uint64, end time.Time, reqs []sent) traffic.Batch {
	type key struct{ instance, route, class string }
	counts := map[key]*traffic.Counts{}
	var order []key
	for _, r := range reqs {
		k := key{r.instance, r.route, traffic.ClassOf(r.status)}
		c := counts[k]
		if c == nil {
			c = &traffic.Counts{}
			counts[k] = c
			order = append(order, k)
		}
		c.Requests++
		c.BytesIn += 100
		c.BytesOut += 1000
		c.Latency[traffic.BucketOf(r.latency)]++
		c.LatencySumMicros += uint64(r.latency / time.Microsecond)
	}
	b := traffic.Batch{Node: node, Seq: seq, Start: end.Add(-10 * time.Second), End: end}
	for _, k := range order {
		b.Series = append(b.Series, traffic.DomainSeries{Group: "edge", Instance: k.instance,
			Series: traffic.Series{Key: traffic.Key{Service: "svc", Route: k.route, Class: k.class}, Counts: *counts[k]}})
	}
	return b
}

// rawQuantile is the q-quantile of sorted latencies, by nearest rank.
func rawQuantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[int(math.Ceil(q*float64(len(sorted))))-1]
}

func (e *env) query(token, params string) apitypes.MetricsAnswer {
	e.t.Helper()
	var a apitypes.MetricsAnswer
	e.do(token, "GET", "/metrics/query?"+params, nil).expect(e.t, http.StatusOK, "query "+params).decode(e.t, &a)
	return a
}

// Two node managers send a known traffic, with a retry and a gap; the
// query's totals equal what was sent, and its quantiles, from the merged
// histograms, fall within a bucket of the ones of the raw latencies.
func TestTrafficIngestAndQuery(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	c1, c2 := e.joinAs(srv.URL, "h1"), e.joinAs(srv.URL, "h2")
	n1, n2 := newNode(t, srv.URL, e.ca, &c1), newNode(t, srv.URL, e.ca, &c2)
	e.group("edge", nil)
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "i1", Group: "edge", Host: "h1"}))
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "i2", Group: "edge", Host: "h2"}))

	rng := rand.New(rand.NewPCG(1, 2))
	var all []sent
	byNode := map[string][][]sent{}
	for range 12 {
		for _, node := range []string{"h1", "h2"} {
			inst := map[string]string{"h1": "i1", "h2": "i2"}[node]
			var reqs []sent
			for range 50 + rng.IntN(50) {
				r := sent{instance: inst, route: []string{"r1", "r2"}[rng.IntN(2)], status: 200,
					latency: time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))}
				switch x := rng.IntN(100); {
				case x < 5:
					r.status = 503
				case x < 15:
					r.status = 404
				}
				reqs = append(reqs, r)
			}
			byNode[node] = append(byNode[node], reqs)
			all = append(all, reqs...)
		}
	}
	start := e.now.Add(-5 * time.Minute)
	send := func(n *node, name string, seq uint64, reqs []sent) traffic.Ack {
		t.Helper()
		var ack traffic.Ack
		n.do("POST", "/traffic", batchOf(name, seq, start.Add(time.Duration(seq)*10*time.Second), reqs)).
			expect(t, http.StatusOK, "batch").decode(t, &ack)
		return ack
	}
	for i := range 12 {
		if ack := send(n1, "h1", uint64(i+1), byNode["h1"][i]); ack.Seq != uint64(i+1) {
			t.Fatalf("ack of batch %d: %d", i+1, ack.Seq)
		}
	}
	// h2's acknowledgement of batch 3 is lost: it sends it again, which
	// is acknowledged and not counted twice.
	for i := range 12 {
		send(n2, "h2", uint64(i+1), byNode["h2"][i])
		if i == 2 {
			if ack := send(n2, "h2", 3, byNode["h2"][i]); ack.Seq != 3 {
				t.Fatalf("ack of a retry: %d", ack.Seq)
			}
		}
	}
	// A batch in another node's name is refused; so are series of
	// another host's instance.
	n1.do("POST", "/traffic", batchOf("h2", 13, e.now, byNode["h2"][0])).expect(t, http.StatusForbidden, "batch of another node")
	if ack := send(n1, "h1", 13, []sent{{instance: "i2", route: "r1", status: 200, latency: time.Millisecond}}); ack.Seq != 13 {
		t.Fatalf("ack of a batch with a refused series: %d", ack.Seq)
	}
	n1.do("POST", "/traffic", traffic.Batch{Node: "h1", Seq: 0, End: e.now}).expect(t, http.StatusBadRequest, "seq 0")

	a := e.query(e.admin, "group=edge&since=15m")
	var want apitypes.StatusClasses
	latencies := make([]time.Duration, 0, len(all))
	for _, r := range all {
		switch r.status {
		case 200:
			want.S2xx++
		case 404:
			want.S4xx++
		case 503:
			want.S5xx++
		}
		latencies = append(latencies, r.latency)
	}
	if a.Totals.Requests != uint64(len(all)) || a.Totals.Status != want || a.Totals.BytesIn != 100*uint64(len(all)) {
		t.Fatalf("totals %+v, want %d requests, %+v", a.Totals, len(all), want)
	}
	// 15 minutes of 10 s points, and the one now is in unless now starts it.
	wantPoints := 91
	if e.now.Unix()%10 == 0 {
		wantPoints = 90
	}
	if a.StepSeconds != 10 || a.ResolutionSeconds != 10 || len(a.Points) != wantPoints {
		t.Errorf("step %d, resolution %d, %d points", a.StepSeconds, a.ResolutionSeconds, len(a.Points))
	}
	var sum uint64
	for _, p := range a.Points {
		sum += p.Requests
	}
	if sum != a.Totals.Requests {
		t.Errorf("points add up to %d, totals say %d", sum, a.Totals.Requests)
	}
	if r5 := *a.Totals.ErrorRatio5xx; math.Abs(r5-float64(want.S5xx)/float64(len(all))) > 1e-9 {
		t.Errorf("5xx ratio %v", r5)
	}
	slices.Sort(latencies)
	for q, got := range map[float64]*float64{0.5: a.Totals.P50, 0.95: a.Totals.P95, 0.99: a.Totals.P99} {
		raw := rawQuantile(latencies, q)
		gb, rb := traffic.BucketOf(time.Duration(*got*float64(time.Second))), traffic.BucketOf(raw)
		if gb < rb-1 || gb > rb+1 {
			t.Errorf("p%v = %v s (bucket %d), raw %v (bucket %d)", q*100, *got, gb, raw, rb)
		}
	}
	// The same at 1 min, read from the 10 s points of minutes not yet
	// rolled up.
	if a := e.query(e.admin, "group=edge&since=15m&step=1m"); a.Totals.Requests != uint64(len(all)) || a.ResolutionSeconds != 60 {
		t.Errorf("at 1 min: %d requests, resolution %d", a.Totals.Requests, a.ResolutionSeconds)
	}
	// A step that does not divide a day is aligned on the Unix epoch too.
	if a := e.query(e.admin, "group=edge&since=15m&step=7m"); a.Totals.Requests != uint64(len(all)) || a.From.Unix()%420 != 0 {
		t.Errorf("at 7 min: %d requests from %s", a.Totals.Requests, a.From)
	}

	// Filters and breakdowns.
	r1 := e.query(e.admin, "group=edge&since=30m&route=r1&instance=i2")
	by := e.query(e.admin, "group=edge&since=30m&by=route")
	if len(by.Breakdown) != 2 || by.Breakdown[0].Requests+by.Breakdown[1].Requests != uint64(len(all)) {
		t.Fatalf("breakdown by route %+v", by.Breakdown)
	}
	var wantR1I2 uint64
	for _, r := range all {
		if r.route == "r1" && r.instance == "i2" {
			wantR1I2++
		}
	}
	if r1.Totals.Requests != wantR1I2 || r1.Route != "r1" || r1.Instance != "i2" {
		t.Errorf("route r1 on i2: %d requests, want %d", r1.Totals.Requests, wantR1I2)
	}
	if a.Folded || a.DroppedBatches != 0 {
		t.Errorf("folded %v, dropped %d", a.Folded, a.DroppedBatches)
	}

	// A gap in h1's sequence is counted, on the host and in the answer.
	send(n1, "h1", 20, nil)
	var hosts []apitypes.Host
	e.do(e.admin, "GET", "/hosts", nil).expect(t, http.StatusOK, "hosts").decode(t, &hosts)
	if hosts[0].Name != "h1" || hosts[0].Traffic == nil || hosts[0].Traffic.LastSeq != 20 || hosts[0].Traffic.Lost != 6 || hosts[0].Traffic.Batches != 14 {
		t.Errorf("host h1 %+v", hosts[0].Traffic)
	}
	if a := e.query(e.admin, "group=edge&since=1m"); a.DroppedBatches != 6 {
		t.Errorf("dropped batches of the group %d", a.DroppedBatches)
	}
	// A node manager joining again for h1 starts from 1.
	c1 = e.joinAs(srv.URL, "h1")
	if ack := send(newNode(t, srv.URL, e.ca, &c1), "h1", 1, nil); ack.Seq != 1 {
		t.Errorf("first batch after a new join acknowledged as %d", ack.Seq)
	}

	for _, tc := range []struct{ params, want string }{
		{"since=1h", "group parameter is required"},
		{"group=edge&since=1h&from=2026-01-01T00:00:00Z", "not both"},
		{"group=edge&since=-1h", "positive duration"},
		{"group=edge&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z&step=30s", "finer than a minute"},
		{"group=edge&since=720h&step=1m", "at most 11000"},
		{"group=edge&by=class", "want service, route"},
		{"group=edge&from=yesterday", "RFC 3339"},
	} {
		r := e.do(e.admin, "GET", "/metrics/query?"+tc.params, nil).expect(t, http.StatusBadRequest, tc.params)
		if !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %s, want %q", tc.params, r.body, tc.want)
		}
	}
	e.do(e.admin, "GET", "/metrics/query?group=nope", nil).expect(t, http.StatusNotFound, "missing group")

	// Ten minutes later the minutes are rolled up, and answer the same.
	e.advance(10 * time.Minute)
	if _, err := e.srv.MaintainTraffic(bg); err != nil {
		t.Fatal(err)
	}
	if a := e.query(e.admin, "group=edge&since=30m&step=5m"); a.Totals.Requests != uint64(len(all)) || len(a.Points) != 6 && len(a.Points) != 7 {
		t.Errorf("rolled up: %d requests in %d points", a.Totals.Requests, len(a.Points))
	}
}

func TestMetricsStep(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		param     string
		span, ago time.Duration
		step, res time.Duration
	}{
		{"", time.Hour, 0, 10 * time.Second, store.TrafficFine},
		{"", 2 * time.Hour, 0, time.Minute, store.TrafficCoarse},
		{"", time.Hour, 48 * time.Hour, time.Minute, store.TrafficCoarse},
		{"", 30 * 24 * time.Hour, 0, 30 * time.Minute, store.TrafficCoarse},
		{"15s", time.Hour, 0, 20 * time.Second, store.TrafficFine},
		{"2m", time.Hour, 0, 2 * time.Minute, store.TrafficCoarse},
		{"1s", time.Hour, 0, 10 * time.Second, store.TrafficFine},
	} {
		to := now.Add(-tc.ago)
		step, res, err := metricsStep(tc.param, to.Add(-tc.span), to, now)
		if err != nil || step != tc.step || res != tc.res {
			t.Errorf("step %q over %s, %s ago: %s at %s (%v), want %s at %s", tc.param, tc.span, tc.ago, step, res, err, tc.step, tc.res)
		}
	}
}

// A viewer of one group cannot read another's metrics, in queries or in
// the Prometheus exposition, nor the nodes' counts.
func TestMetricsRBAC(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	c1 := e.joinAs(srv.URL, "h1")
	e.group("edge", nil)
	e.group("other", nil)
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "i1", Group: "edge", Host: "h1"}))
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "i2", Group: "other", Host: "h1"}))
	b := batchOf("h1", 1, e.now, []sent{{instance: "i1", route: "r1", status: 200, latency: 3 * time.Millisecond},
		{instance: "i1", route: "r1", status: 500, latency: 700 * time.Millisecond}})
	b.Series = append(b.Series, batchOf("h1", 1, e.now, []sent{{instance: "i2", route: "r9", status: 200, latency: time.Millisecond}}).Series...)
	b.Series[2].Group = "other"
	newNode(t, srv.URL, e.ca, &c1).do("POST", "/traffic", b).expect(t, http.StatusOK, "batch")

	viewer := e.user("vera", rbac.RoleViewer, store.Scope{Groups: []string{"edge"}})
	if a := e.query(viewer, "group=edge&since=5m"); a.Totals.Requests != 2 {
		t.Errorf("viewer of edge reads %d requests", a.Totals.Requests)
	}
	e.do(viewer, "GET", "/metrics/query?group=other&since=5m", nil).expect(t, http.StatusForbidden, "viewer of edge on other")
	e.do("", "GET", "/metrics/query?group=edge", nil).expect(t, http.StatusUnauthorized, "no token")

	scrape := func(token string) string {
		r := e.do(token, "GET", "/metrics/prometheus", nil).expect(t, http.StatusOK, "prometheus")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("content type %q", ct)
		}
		return string(r.body)
	}
	all := scrape(e.admin)
	for _, line := range []string{
		`gatehouse_domain_requests_total{class="2xx",group="edge",service="svc"} 1`,
		`gatehouse_domain_requests_total{class="5xx",group="edge",service="svc"} 1`,
		`gatehouse_domain_requests_total{class="2xx",group="other",service="svc"} 1`,
		`gatehouse_domain_request_duration_seconds_bucket{group="edge",service="svc",le="0.005"} 1`,
		`gatehouse_domain_request_duration_seconds_bucket{group="edge",service="svc",le="1"} 2`,
		`gatehouse_domain_request_duration_seconds_count{group="edge",service="svc"} 2`,
		`gatehouse_domain_request_duration_seconds_sum{group="edge",service="svc"} 0.703`,
		`gatehouse_domain_response_bytes_total{group="edge",service="svc"} 2000`,
		`gatehouse_domain_folded_requests_total{group="edge",label="route"} 0`,
		`gatehouse_admin_traffic_batches_total{node="h1",result="stored"} 1`,
		`gatehouse_admin_traffic_dropped_batches_total{node="h1"} 0`,
	} {
		if !strings.Contains(all, line+"\n") {
			t.Errorf("exposition lacks %s:\n%s", line, all)
		}
	}
	mine := scrape(viewer)
	if !strings.Contains(mine, `group="edge"`) || strings.Contains(mine, `group="other"`) || strings.Contains(mine, "gatehouse_admin_traffic") {
		t.Errorf("exposition for a viewer of edge:\n%s", mine)
	}
}

// Beyond a group's limit, routes fold into (other) and the answer says so.
func TestMetricsFold(t *testing.T) {
	e := newEnv(t)
	e.srv.traffic = store.TrafficLimits{MaxRoutes: 1, MaxConsumers: 1}
	srv := e.agentServer()
	c1 := e.joinAs(srv.URL, "h1")
	e.group("edge", nil)
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "i1", Group: "edge", Host: "h1"}))
	newNode(t, srv.URL, e.ca, &c1).do("POST", "/traffic", batchOf("h1", 1, e.now, []sent{
		{instance: "i1", route: "r1", status: 200}, {instance: "i1", route: "r2", status: 200}})).expect(t, http.StatusOK, "batch")
	a := e.query(e.admin, "group=edge&since=5m&by=route")
	if !a.Folded || len(a.Breakdown) != 2 || a.Breakdown[0].Route != apitypes.MetricsOther || apitypes.MetricsOther != store.OtherLabel {
		t.Errorf("folded answer %+v", a)
	}
	if a := e.query(e.admin, "group=edge&since=5m&route="+url.QueryEscape(apitypes.MetricsOther)); a.Totals.Requests != 1 {
		t.Errorf("the folded route: %d requests", a.Totals.Requests)
	}
	if body := string(e.do(e.admin, "GET", "/metrics/prometheus", nil).body); !strings.Contains(body, `gatehouse_domain_folded_requests_total{group="edge",label="route"} 1`) {
		t.Errorf("fold not exposed:\n%s", body)
	}
}
