package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// trafficRanges are the ranges the traffic page offers, as the API's
// since parameter; the first is the default.
func trafficRanges() []string { return []string{"15m", "1h", "6h", "24h", "168h"} }

// Chart geometry, in the SVG's own units.
const (
	chartW, chartH = 600.0, 120.0
)

// line is one series of a chart: its polyline's points and its legend.
type line struct {
	Name   string
	Class  string
	Points string
	Last   string
}

// chart is one SVG chart of a traffic page.
type chart struct {
	Title string
	Max   string
	Lines []line
}

type trafficView struct {
	Group  string
	Since  string
	Ranges []string
	Answer apitypes.MetricsAnswer
	Charts []chart
	// Routes are the busiest routes, most requests first.
	Routes []apitypes.MetricsSeries
}

func (c *Console) traffic(w http.ResponseWriter, r *http.Request, s *session) {
	c.show(w, r, s, "traffic", c.trafficData)
}

// trafficData reads the group's traffic over the chosen range by route
// (the API's metrics query, as `gatehouse top`) and draws its charts.
func (c *Console) trafficData(r *http.Request, s *session) (page, error) {
	name := r.PathValue("group")
	since := r.URL.Query().Get("since")
	ranges := trafficRanges()
	if !slices.Contains(ranges, since) {
		since = ranges[0]
	}
	v := trafficView{Group: name, Since: since, Ranges: ranges}
	q := url.Values{"group": {name}, "since": {since}, "by": {apitypes.MetricsByRoute}}
	if err := c.call(r, s.bearer, http.MethodGet, "/metrics/query?"+q.Encode(), nil, &v.Answer); err != nil {
		return page{}, err
	}
	v.Routes = slices.Clone(v.Answer.Breakdown)
	slices.SortStableFunc(v.Routes, func(a, b apitypes.MetricsSeries) int {
		switch {
		case a.Requests > b.Requests:
			return -1
		case a.Requests < b.Requests:
			return 1
		}
		return strings.Compare(a.Service+"/"+a.Route, b.Service+"/"+b.Route)
	})
	pts := v.Answer.Points
	get := func(f func(apitypes.MetricsValues) *float64) []*float64 {
		out := make([]*float64, len(pts))
		for i, p := range pts {
			out[i] = f(p.MetricsValues)
		}
		return out
	}
	val := func(x float64) *float64 { return &x }
	v.Charts = []chart{
		drawChart("Requests per second", "%.2f/s",
			series{"rate", "l1", get(func(m apitypes.MetricsValues) *float64 { return val(m.Rate) })}),
		drawChart("Error ratios", "%.1f%%",
			series{"4xx", "l2", get(func(m apitypes.MetricsValues) *float64 { return percent(m.ErrorRatio4xx) })},
			series{"5xx", "l3", get(func(m apitypes.MetricsValues) *float64 { return percent(m.ErrorRatio5xx) })}),
		drawChart("Latency", "%.1f ms",
			series{"p50", "l1", get(func(m apitypes.MetricsValues) *float64 { return millis(m.P50) })},
			series{"p95", "l2", get(func(m apitypes.MetricsValues) *float64 { return millis(m.P95) })},
			series{"p99", "l3", get(func(m apitypes.MetricsValues) *float64 { return millis(m.P99) })}),
		drawChart("Bytes per step", "%.0f B",
			series{"in", "l1", get(func(m apitypes.MetricsValues) *float64 { return val(float64(m.BytesIn)) })},
			series{"out", "l2", get(func(m apitypes.MetricsValues) *float64 { return val(float64(m.BytesOut)) })}),
	}
	live := Prefix + "live" + groupPath(name) + "/traffic?since=" + url.QueryEscape(since)
	return page{Title: "Traffic of " + name, Nav: "overview", User: s.user, CSRF: s.csrf, Live: live, Data: v}, nil
}

// millis turns the API's seconds into milliseconds.
func millis(s *float64) *float64 {
	if s == nil {
		return nil
	}
	m := *s * 1000
	return &m
}

func percent(r *float64) *float64 {
	if r == nil {
		return nil
	}
	p := *r * 100
	return &p
}

// series is the values of one line; nil where there is no value (no
// request in that step).
type series struct {
	name, class string
	values      []*float64
}

// drawChart scales the series to one chart, 0 at the bottom and the
// largest value at the top; a step without a value breaks no line, it is
// left out.
func drawChart(title, format string, ss ...series) chart {
	c := chart{Title: title}
	maxV := 0.0
	for _, s := range ss {
		for _, v := range s.values {
			if v != nil && *v > maxV {
				maxV = *v
			}
		}
	}
	c.Max = fmt.Sprintf(format, maxV)
	if maxV == 0 {
		maxV = 1
	}
	for _, s := range ss {
		var b strings.Builder
		l := line{Name: s.name, Class: s.class, Last: "—"}
		n := len(s.values)
		for i, v := range s.values {
			if v == nil {
				continue
			}
			x := chartW
			if n > 1 {
				x = float64(i) * chartW / float64(n-1)
			}
			y := chartH - *v/maxV*chartH
			b.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64) + " ")
			l.Last = fmt.Sprintf(format, *v)
		}
		l.Points = strings.TrimSpace(b.String())
		c.Lines = append(c.Lines, l)
	}
	return c
}
