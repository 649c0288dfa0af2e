package httplog

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

type metrics struct{ dropped atomic.Int64 }

func (m *metrics) LogDropped(policy string, n int) {
	if policy == "http-log" {
		m.dropped.Add(int64(n))
	}
}
func (m *metrics) ExternalFailed(string, string) {}

// collector is a log endpoint recording the batches it receives.
type collector struct {
	*httptest.Server
	batches chan batch
}

type batch struct {
	header http.Header
	lines  []map[string]any
}

func newCollector(t *testing.T, handle func(w http.ResponseWriter, r *http.Request) bool) *collector {
	c := &collector{batches: make(chan batch, 100)}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handle != nil && !handle(w, r) {
			return
		}
		body, _ := io.ReadAll(r.Body)
		var b batch
		b.header = r.Header
		for _, line := range strings.SplitAfter(string(body), "\n") {
			if line == "" {
				continue
			}
			if !strings.HasSuffix(line, "\n") {
				t.Errorf("line %q does not end in a newline", line)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("line %q: %v", line, err)
			}
			b.lines = append(b.lines, m)
		}
		c.batches <- b
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) next(t *testing.T) batch {
	t.Helper()
	select {
	case b := <-c.batches:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch arrived")
		return batch{}
	}
}

type fixture struct {
	p   *httpLog
	res *policytest.Resources
	m   *metrics
}

func build(t testing.TB, config string) fixture {
	t.Helper()
	f := fixture{res: policytest.NewResources(t), m: &metrics{}}
	env := policytest.Env(nil)
	env.Resources, env.Metrics = f.res, f.m
	f.p = policytest.Build(t, httpLogKind, config, env).(*httpLog)
	return f
}

var when = time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600))

// exchange is a logged request: GET /orders/7?page=2 from 192.0.2.1 by
// alice, answered 200.
func exchange(path string) (*policy.Context, *policy.Outcome) {
	req := policytest.Get(path, "User-Agent", "curl/8.5", "X-Tenant", "acme")
	req.Addr = netip.MustParseAddr("::ffff:192.0.2.1")
	c := &policy.Context{}
	c.Reset(req, when)
	c.Service, c.Route, c.RequestID = "orders", "get-order", []byte("req-1")
	cs := policy.NewConsumers()
	c.Identify(cs.Add("alice"), "key")
	return c, &policy.Outcome{
		Status: 200, Duration: 12345 * time.Microsecond, UpstreamTime: 10 * time.Millisecond,
		BytesIn: 10, BytesOut: 2048,
	}
}

func TestHTTPLogBatches(t *testing.T) {
	col := newCollector(t, nil)
	f := build(t, `{"endpoint": "`+col.URL+`/ingest", "batch_size": 3, "flush_interval": "1h",
		"headers": {"Authorization": "Bearer collector-token"},
		"include_request_headers": ["User-Agent", "X-Missing"]}`)
	c, o := exchange("/orders/7?page=2")
	for range 3 {
		f.p.Log(c, o)
	}
	b := col.next(t)
	if got := b.header.Get("Content-Type"); got != "application/x-ndjson" {
		t.Errorf("Content-Type %q", got)
	}
	if got := b.header.Get("Authorization"); got != "Bearer collector-token" {
		t.Errorf("Authorization %q", got)
	}
	if len(b.lines) != 3 {
		t.Fatalf("%d lines, want 3", len(b.lines))
	}
	want := map[string]any{
		"time": "2026-03-01T11:30:45.123456789Z", "request_id": "req-1",
		"method": "GET", "host": "api.example.com", "path": "/orders/7", "query": "page=2",
		"status": 200.0, "duration_ms": 12.345, "upstream_ms": 10.0, "bytes_in": 10.0, "bytes_out": 2048.0,
		"client_ip": "192.0.2.1", "service": "orders", "route": "get-order", "consumer": "alice",
		"request_headers": map[string]any{"user-agent": "curl/8.5"},
	}
	if !reflect.DeepEqual(b.lines[0], want) {
		t.Errorf("entry\n%v\nwant\n%v", b.lines[0], want)
	}
}

func TestHTTPLogFlushInterval(t *testing.T) {
	col := newCollector(t, nil)
	f := build(t, `{"endpoint": "`+col.URL+`", "flush_interval": "20ms"}`)
	c, o := exchange("/x")
	c.Consumer = nil
	f.p.Log(c, o)
	b := col.next(t)
	if len(b.lines) != 1 {
		t.Fatalf("%d lines, want 1", len(b.lines))
	}
	line := b.lines[0]
	if _, ok := line["query"]; ok {
		t.Error("query logged without one")
	}
	if _, ok := line["request_headers"]; ok {
		t.Error("request_headers logged without include_request_headers")
	}
	if line["consumer"] != "" {
		t.Errorf("consumer %v, want empty", line["consumer"])
	}
}

func TestHTTPLogCloseFlushes(t *testing.T) {
	col := newCollector(t, nil)
	f := build(t, `{"endpoint": "`+col.URL+`", "flush_interval": "1h", "batch_size": 4}`)
	c, o := exchange("/x")
	for range 6 {
		f.p.Log(c, o)
	}
	// Close returns once every batch was answered, so all are in.
	f.res.Close()
	lines := 0
	for len(col.batches) > 0 {
		b := <-col.batches
		if len(b.lines) > 4 {
			t.Errorf("batch of %d lines, batch_size is 4", len(b.lines))
		}
		lines += len(b.lines)
	}
	if lines != 6 {
		t.Fatalf("%d lines delivered, want 6", lines)
	}
	// Entries of requests still finishing after Close are dropped.
	f.p.Log(c, o)
	if got := f.m.dropped.Load(); got != 1 {
		t.Errorf("dropped %d, want 1", got)
	}
}

// A collector that hangs never holds up Log: the queue fills, and the
// rest is dropped and counted.
func TestHTTPLogBlockedEndpoint(t *testing.T) {
	release := make(chan struct{})
	col := newCollector(t, func(w http.ResponseWriter, r *http.Request) bool {
		<-release
		return false
	})
	defer close(release)
	f := build(t, `{"endpoint": "`+col.URL+`", "batch_size": 10, "buffer": 100, "timeout": "1m"}`)
	c, o := exchange("/x")
	const calls = 100000
	for range calls {
		f.p.Log(c, o)
	}
	s := f.p.sender
	if got := s.dropped.Load(); got < calls-100 {
		t.Errorf("dropped %d of %d with a buffer of 100", got, calls)
	}
	if got, internal := f.m.dropped.Load(), s.dropped.Load(); got != int64(internal) {
		t.Errorf("metrics counted %d drops, sender %d", got, internal)
	}
}

func TestHTTPLogRetry(t *testing.T) {
	var calls atomic.Int32
	col := newCollector(t, func(w http.ResponseWriter, r *http.Request) bool {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return false
		}
		return true
	})
	f := build(t, `{"endpoint": "`+col.URL+`", "batch_size": 2, "flush_interval": "1h"}`)
	c, o := exchange("/x")
	f.p.Log(c, o)
	f.p.Log(c, o)
	if b := col.next(t); len(b.lines) != 2 {
		t.Fatalf("%d lines, want 2", len(b.lines))
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
	if got := f.m.dropped.Load(); got != 0 {
		t.Errorf("dropped %d", got)
	}
}

func TestHTTPLogFailingEndpointDrops(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
	}{
		{"error status", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }},
		// Followed with a GET, a redirect would look delivered.
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			col := newCollector(t, func(w http.ResponseWriter, r *http.Request) bool {
				calls.Add(1)
				tt.answer(w, r)
				return false
			})
			f := build(t, `{"endpoint": "`+col.URL+`", "batch_size": 3, "flush_interval": "1h"}`)
			c, o := exchange("/x")
			for range 3 {
				f.p.Log(c, o)
			}
			// Close waits for the batch's two attempts.
			f.res.Close()
			if got := calls.Load(); got != 2 {
				t.Errorf("%d requests, want 2 (one retry)", got)
			}
			if got := f.m.dropped.Load(); got != 3 {
				t.Errorf("dropped %d, want 3", got)
			}
		})
	}
}

// A deployment that keeps the configuration keeps the sender and its
// queue; another configuration has its own.
func TestHTTPLogSharedSender(t *testing.T) {
	res := policytest.NewResources(t)
	env := policytest.Env(nil)
	env.Resources = res
	a := policytest.Build(t, httpLogKind, `{"endpoint": "http://127.0.0.1:1/", "include_request_headers": ["A"]}`, env).(*httpLog)
	b := policytest.Build(t, httpLogKind, `{"endpoint": "http://127.0.0.1:1/"}`, env).(*httpLog)
	other := policytest.Build(t, httpLogKind, `{"endpoint": "http://127.0.0.1:1/", "headers": {"X": "y"}}`, env).(*httpLog)
	if a.sender != b.sender || a.sender == other.sender {
		t.Errorf("senders: same config %v, other config %v", a.sender == b.sender, a.sender == other.sender)
	}
}

// Validation has no resources: New checks and starts nothing.
func TestHTTPLogValidationStartsNothing(t *testing.T) {
	p := policytest.Build(t, httpLogKind, `{"endpoint": "http://127.0.0.1:1/"}`, policytest.Env(nil)).(*httpLog)
	if p.sender != nil {
		t.Fatal("a sender was made without resources")
	}
	c, o := exchange("/x")
	p.Log(c, o)
}

func TestHTTPLogConfigErrors(t *testing.T) {
	env := policytest.Env(nil)
	for _, tt := range []struct {
		config string
		want   []string
	}{
		{`{}`, []string{"endpoint: required"}},
		{`{"endpoint": "ftp://logs"}`, []string{"endpoint: must be an http:// or https:// URL"}},
		{`{"endpoint": "http://"}`, []string{"endpoint: must be an http:// or https:// URL"}},
		{`{"endpoint": "https://logs.example.com/in", "batch_size": 0, "flush_interval": 5, "buffer": 1.5,
			"timeout": "1ms", "headers": {"Bad Name": "x", "X-Ok": "a\nb"},
			"include_request_headers": ["User-Agent", "a:b"], "format": "json", "sample_percent": 0}`, []string{
			"batch_size: must be between 1 and 10000",
			`flush_interval: must be a duration such as "1s" or "250ms", got an integer`,
			"buffer: must be an integer",
			"timeout: must be between 100ms and 5m0s",
			`headers["Bad Name"]: must be keyed by an HTTP header name`,
			"headers.X-Ok: must not contain control characters",
			"sample_percent: must be between 1 and 100",
			"include_request_headers[1]: must be an HTTP header name",
			"format: unknown field",
		}},
	} {
		got := policytest.Errors(t, httpLogKind, tt.config, env)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("errors of %s:\n%s\nwant:\n%s", tt.config, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\`, "ctl\x00\x01\x1f\n\r\t", "héllo ✓ 😀", "bad\xff\xfe utf8", "trunc\xe2\x9c"} {
		var got string
		if err := json.Unmarshal(appendString(nil, []byte(s)), &got); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		want, _ := json.Marshal(s)
		var w string
		json.Unmarshal(want, &w)
		if got != w {
			t.Errorf("%q decodes to %q, want %q", s, got, w)
		}
	}
	in, buf := []byte("héllo\xff ✓"), make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = appendString(buf[:0], in) }); n != 0 {
		t.Errorf("appendString allocates %v times", n)
	}
}

func BenchmarkHTTPLog(b *testing.B) {
	cfg := config{endpoint: "http://127.0.0.1:1/", batchSize: 100, buffer: 10000, timeout: time.Second}
	s := newSender(cfg, nil, nil)
	p := &httpLog{sender: s, headers: []string{"user-agent"}}
	c, o := exchange("/orders/7?page=2")
	c.Request = newBenchRequest()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		p.Log(c, o)
		// Stands in for the sender's goroutine, which is not started.
		if n++; n == cfg.buffer {
			s.mu.Lock()
			s.buf, s.inBuf, s.queued = s.buf[:0], 0, 0
			s.mu.Unlock()
			n = 0
		}
	}
	if s.dropped.Load() != 0 {
		b.Fatal("entries dropped")
	}
}

// benchRequest is a policy.Request whose accessors do not allocate, so
// that the benchmark measures Log alone.
type benchRequest struct {
	method, path, query, host, userAgent []byte
}

func newBenchRequest() *benchRequest {
	return &benchRequest{
		method: []byte("GET"), path: []byte("/orders/7"), query: []byte("page=2"),
		host: []byte("api.example.com"), userAgent: []byte("curl/8.5"),
	}
}

func (r *benchRequest) Method() []byte { return r.method }
func (r *benchRequest) Path() []byte   { return r.path }
func (r *benchRequest) Query() []byte  { return r.query }
func (r *benchRequest) Host() []byte   { return r.host }
func (r *benchRequest) Header(name string) []byte {
	if strings.EqualFold(name, "User-Agent") {
		return r.userAgent
	}
	return nil
}
func (r *benchRequest) VisitHeaders(func(name, value []byte)) {}
func (r *benchRequest) ContentLength() int64                  { return 0 }
func (r *benchRequest) RemoteAddr() netip.Addr                { return netip.AddrFrom4([4]byte{192, 0, 2, 1}) }
func (r *benchRequest) TLS() bool                             { return false }
func (r *benchRequest) Body() ([]byte, bool)                  { return nil, true }

func TestHTTPLogSamplePercent(t *testing.T) {
	for _, tc := range []struct {
		percent, exchanges, want int
	}{
		{100, 7, 7},
		{10, 100, 10},
		{10, 9, 0},
		{25, 8, 2},
		{1, 250, 2},
	} {
		p := &httpLog{percent: tc.percent}
		got := 0
		for range tc.exchanges {
			if p.sampled() {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("sample_percent %d over %d exchanges: %d logged, want %d", tc.percent, tc.exchanges, got, tc.want)
		}
	}
}
