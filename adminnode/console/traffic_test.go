package console

import (
	"strings"
	"testing"
)

func TestDrawChart(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name   string
		values []*float64
		points string
		max    string
		last   string
	}{
		{"empty", nil, "", "0.00", "—"},
		{"one point at the right edge", []*float64{f(2)}, "600.0,0.0", "2.00", "2.00"},
		{"scaled to the largest", []*float64{f(0), f(1), f(2)}, "0.0,120.0 300.0,60.0 600.0,0.0", "2.00", "2.00"},
		{"steps without a value left out", []*float64{f(1), nil, f(1)}, "0.0,0.0 600.0,0.0", "1.00", "1.00"},
		{"all zero stays at the bottom", []*float64{f(0), f(0)}, "0.0,120.0 600.0,120.0", "0.00", "0.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := drawChart("t", "%.2f", series{"s", "l1", tt.values})
			if c.Max != tt.max || len(c.Lines) != 1 || c.Lines[0].Points != tt.points || c.Lines[0].Last != tt.last {
				t.Errorf("got max %q, line %+v; want max %q, points %q, last %q", c.Max, c.Lines, tt.max, tt.points, tt.last)
			}
			if strings.ContainsAny(c.Lines[0].Points, "<>\"'&") {
				t.Errorf("points %q", c.Lines[0].Points)
			}
		})
	}
}
