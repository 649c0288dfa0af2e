package transform

import (
	"testing"

	"github.com/gatehouse/gatehouse/policy/policytest"
)

func TestRequestSizeLimit(t *testing.T) {
	p := policytest.Build(t, requestSizeLimitKind, `{"max_bytes": 100}`, nil)
	tests := []struct {
		name     string
		cl       int64
		body     []byte
		streamed bool
		pass     bool
		limit    int64 // 0 when not asked
	}{
		{name: "no body", cl: 0, pass: true},
		{name: "under", cl: 50, pass: true},
		{name: "at the limit", cl: 100, pass: true},
		{name: "over", cl: 101},
		{name: "chunked, streamed", cl: -1, streamed: true, pass: true, limit: 100},
		{name: "chunked, in memory, under", cl: -1, body: make([]byte, 100), pass: true},
		{name: "chunked, in memory, over", cl: -1, body: make([]byte, 150)},
	}
	for _, tt := range tests {
		req := policytest.Get("/upload")
		req.MethodV, req.CL, req.BodyV, req.Streamed = "POST", tt.cl, tt.body, tt.streamed
		c, ok := run(p, req, nil)
		if ok != tt.pass {
			t.Errorf("%s: passed %v, want %v", tt.name, ok, tt.pass)
		}
		if !ok {
			wantAnswer(t, tt.name, c, 413, "request_too_large")
		}
		if max, set := c.BodyLimit(); max != tt.limit || set != (tt.limit != 0) {
			t.Errorf("%s: BodyLimit() = %d %v, want %d", tt.name, max, set, tt.limit)
		}
	}
}

func TestRequestSizeLimitConfigErrors(t *testing.T) {
	wantErrors(t, requestSizeLimitKind, `{}`, nil, `max_bytes: required`)
	wantErrors(t, requestSizeLimitKind, `{"max_bytes": 0}`, nil, `max_bytes: must be between 1 and 1099511627776`)
	wantErrors(t, requestSizeLimitKind, `{"max_bytes": "1MB", "max": 3}`, nil,
		`max_bytes: must be an integer, got a string`, `max: unknown field`)
	wantErrors(t, requestSizeLimitKind, `{"max_bytes": 1.5}`, nil, `max_bytes: must be an integer`)
}

func BenchmarkRequestSizeLimit(b *testing.B) {
	p := policytest.Build(b, requestSizeLimitKind, `{"max_bytes": 1048576}`, nil)
	b.Run("length", func(b *testing.B) {
		req := newBenchReq("POST", "/upload", "192.0.2.1")
		req.cl = 4096
		benchRun(b, p, req, nil)
	})
	b.Run("chunked", func(b *testing.B) {
		req := newBenchReq("POST", "/upload", "192.0.2.1")
		req.cl = -1
		benchRun(b, p, req, nil)
	})
}
