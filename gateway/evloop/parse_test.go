package evloop

import (
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, head string
		status     int
		check      func(t *testing.T, r *Request)
	}{
		{"origin form", "GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nX-A:  v \r\n\r\n", 0, func(t *testing.T, r *Request) {
			if string(r.Method) != "GET" || string(r.URI) != "/a/b?x=1&y" || string(r.Path) != "/a/b" ||
				string(r.Query) != "x=1&y" || string(r.Host) != "h" || r.Minor != 1 || r.Close ||
				string(r.Header("x-a")) != "v" || len(r.Headers) != 2 {
				t.Fatalf("%+v", r)
			}
		}},
		{"absolute form", "GET http://example.com:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if string(r.Host) != "example.com:8080" || string(r.Path) != "/p" || string(r.Query) != "q" {
				t.Fatalf("%+v", r)
			}
		}},
		{"http/1.0 default close", "GET / HTTP/1.0\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if !r.Close || r.Minor != 0 {
				t.Fatalf("%+v", r)
			}
		}},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if r.Close {
				t.Fatalf("%+v", r)
			}
		}},
		{"connection list", "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if !r.Close {
				t.Fatalf("%+v", r)
			}
		}},
		{"websocket", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if !r.Upgrade || r.Close {
				t.Fatalf("%+v", r)
			}
		}},
		{"upgrade without connection token", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if r.Upgrade {
				t.Fatalf("%+v", r)
			}
		}},
		{"content length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\ncontent-length: 42\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if r.ContentLength != 42 {
				t.Fatalf("%+v", r)
			}
		}},
		{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if r.ContentLength != -1 {
				t.Fatalf("%+v", r)
			}
		}},
		{"chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501, nil},
		{"identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501, nil},
		{"negative length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, nil},
		{"huge length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, nil},
		{"empty length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400, nil},
		{"tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400, nil},
		{"empty name", "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400, nil},
		{"control in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400, nil},
		{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, nil},
		{"lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 400, nil},
		{"mixed-case method", "Get / HTTP/1.1\r\nHost: h\r\n\r\n", 400, nil},
		{"method with a digit", "GET2 / HTTP/1.1\r\nHost: h\r\n\r\n", 400, nil},
		{"unknown method", "M-SEARCH_X / HTTP/1.1\r\nHost: h\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if string(r.Method) != "M-SEARCH_X" {
				t.Fatalf("%+v", r)
			}
		}},
		{"fragment", "GET /a?q=1#frag?x HTTP/1.1\r\nHost: h\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if string(r.URI) != "/a?q=1" || string(r.Path) != "/a" || string(r.Query) != "q=1" {
				t.Fatalf("%+v", r)
			}
		}},
		{"fragment in path", "GET /a#b/c HTTP/1.1\r\nHost: h\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if string(r.URI) != "/a" || string(r.Path) != "/a" || len(r.Query) != 0 {
				t.Fatalf("%+v", r)
			}
		}},
		{"fragment only", "GET #a HTTP/1.1\r\nHost: h\r\n\r\n", 400, nil},
		{"http/1.0 with chunked", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"http/1.0 with other coding", "POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 501, nil},
		{"expect continue", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if !r.Continue {
				t.Fatalf("%+v", r)
			}
		}},
		{"expect continue http/1.0", "POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if r.Continue {
				t.Fatalf("%+v", r)
			}
		}},
		{"other expectation", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 0, func(t *testing.T, r *Request) {
			if r.Continue {
				t.Fatalf("%+v", r)
			}
		}},
		{"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400, nil},
		{"double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, nil},
		{"relative target", "GET a HTTP/1.1\r\nHost: h\r\n\r\n", 400, nil},
		{"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501, nil},
		{"http/2", "PRI * HTTP/2.0\r\n\r\n", 505, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if end := headEnd([]byte(tt.head), 0); end != len(tt.head) {
				t.Fatalf("headEnd = %d, want %d", end, len(tt.head))
			}
			var r Request
			rj := parseRequest([]byte(tt.head), &r)
			if rj.status != tt.status {
				t.Fatalf("status %d (%s), want %d", rj.status, rj.msg, tt.status)
			}
			if tt.check != nil {
				tt.check(t, &r)
			}
		})
	}
}

func TestParseRequestAllocs(t *testing.T) {
	head := []byte("POST /a?b HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n" +
		"Content-Length: 10\r\nX-A: b\r\nX-B: c\r\n\r\n")
	var r Request
	parseRequest(head, &r)
	if n := testing.AllocsPerRun(100, func() { parseRequest(head, &r) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestHeadEnd(t *testing.T) {
	full := "GET / HTTP/1.1\r\nHost: h\r\n\r\nrest"
	for i := 0; i < len(full)-4; i++ {
		if got := headEnd([]byte(full[:i]), 0); got != -1 {
			t.Fatalf("prefix %d: %d", i, got)
		}
	}
	// Resuming from where an earlier call on a shorter prefix stopped
	// finds the same end.
	for from := 0; from < len(full)-4; from++ {
		if got := headEnd([]byte(full), from); got != len(full)-4 {
			t.Fatalf("from %d: %d", from, got)
		}
	}
}

func TestChunkedScan(t *testing.T) {
	valid := []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n",
		"5 \t;ext\r\nhello\r\n3 \r\nabc\r\n0\r\n\r\n",
		"000ff\r\n" + strings.Repeat("z", 255) + "\r\n0\r\n\r\n",
	}
	for _, msg := range valid {
		// Every split point: the scanner keeps its state across pieces.
		for split := 0; split <= len(msg); split++ {
			var b body
			b.init(bodyChunked, 0)
			n1, ok1 := b.scan([]byte(msg[:split] + ""))
			rest := msg[n1:]
			n2, ok2 := b.scan([]byte(rest + "EXTRA"))
			if !ok1 || !ok2 || !b.done() || n1+n2 != len(msg) {
				t.Fatalf("%q split %d: n=%d+%d ok=%v,%v done=%v", msg, split, n1, n2, ok1, ok2, b.done())
			}
		}
	}
	invalid := []string{"x\r\n", "\r\n", "5\nhello", "5\r\nhelloX", "0\r\nT\n", "1234567890abcdef0\r\n", "0\r\n\rX",
		"3 4\r\nabc", "3\t4\r\nabc", "0 0\r\n\r\n"}
	for _, msg := range invalid {
		var b body
		b.init(bodyChunked, 0)
		if _, ok := b.scan([]byte(msg)); ok {
			t.Fatalf("%q accepted", msg)
		}
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		head   string
		ok     bool
		status int
		out    string
		check  func(rh respHead) bool
	}{
		{"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nKeep-Alive: t=5\r\nContent-Length: 5\r\nTE: x\r\nTrailer: y\r\nX: y\r\n\r\n", true, 200,
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n", func(rh respHead) bool { return rh.close && rh.haveCL && rh.cl == 5 }},
		{"HTTP/1.0 404 Not Found\nTransfer-Encoding: gzip, chunked\n\n", true, 404,
			"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\n", func(rh respHead) bool { return rh.minor == 0 && rh.te && rh.chunked }},
		{"HTTP/1.1 204\r\n\r\n", true, 204, "HTTP/1.1 204\r\n", nil},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", true, 200, "", func(rh respHead) bool { return rh.badLength }},
		{"HTTP/2 200\r\n\r\n", false, 0, "", nil},
		{"HTTP/1.1 20 OK\r\n\r\n", false, 0, "", nil},
		{"HTTP/1.1 200 OK\r\n folded\r\n\r\n", false, 0, "", nil},
	}
	for _, tt := range tests {
		var rh respHead
		out, ok := parseResponse([]byte(tt.head), &rh, nil, false, &Exchange{})
		if ok != tt.ok || ok && (rh.status != tt.status || tt.out != "" && string(out) != tt.out || tt.check != nil && !tt.check(rh)) {
			t.Errorf("%q: ok=%v %+v %q", tt.head, ok, rh, out)
		}
	}
}

func TestDechunk(t *testing.T) {
	msg := "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"
	for split := 0; split <= len(msg); split++ {
		var b body
		b.init(bodyChunked, 0)
		var got []byte
		total := 0
		for _, piece := range []string{msg[:split], msg[split:] + "NEXT"} {
			p := []byte(piece)
			consumed, data, ok := b.dechunk(p)
			if !ok {
				t.Fatalf("split %d: not ok", split)
			}
			got = append(got, p[:data]...)
			total += consumed
		}
		if string(got) != "hello0123456789" || !b.done() || total != len(msg) {
			t.Fatalf("split %d: %q done=%v consumed %d of %d", split, got, b.done(), total, len(msg))
		}
	}
}
