package evloop

import "testing"

// TestParseRequestStrict holds the requests the differential fuzzing
// against net/http found read differently by another hop, each now
// refused with the status the client gets.
func TestParseRequestStrict(t *testing.T) {
	tests := []struct {
		name, head string
		status     int
	}{
		{"chunked with a trailing comma", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n", 501},
		{"chunked after an empty element", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n\r\n", 501},
		{"chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"userinfo in the target", "GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"percent-escape in the target's host", "GET http://%61pi.example/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"no host in the target", "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"scheme starting with a digit", "GET 0://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"space in Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"slash in Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"IPv6 host and port", "GET http://[::1]:80/p HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 0},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			if rj := parseRequest([]byte(tt.head), &r); rj.status != tt.status {
				t.Fatalf("status %d (%s), want %d", rj.status, rj.msg, tt.status)
			}
		})
	}
}

// TestChunkedScanStrict: chunk lines the fuzzing found read differently
// by net/http, and the ones RFC 9112 allows that must stay accepted.
func TestChunkedScanStrict(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
	}{
		{"3 4\r\nabc\r\n0\r\n\r\n", false},
		{"3\t4\r\nabc\r\n0\r\n\r\n", false},
		{"0\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"3 \t\r\nabc\r\n0\r\n\r\n", true},
		{"3 ;ext=1\r\nabc\r\n0\r\n\r\n", true},
		{"3;ext=1\r\nabc\r\n0\r\nContent-Length: 9\r\n\r\n", true},
	}
	for _, tt := range tests {
		var b body
		b.init(bodyChunked, 0)
		n, ok := b.scan([]byte(tt.body))
		if ok != tt.ok || ok && (!b.done() || n != len(tt.body)) {
			t.Errorf("%q: ok=%v done=%v n=%d", tt.body, ok, b.done(), n)
		}
	}
}

// TestParseResponseStrict: response heads the engine would have passed to
// the client with lines the client could split otherwise.
func TestParseResponseStrict(t *testing.T) {
	tests := []struct {
		head string
		ok   bool
	}{
		{"HTTP/1.1 200 OK\r\nX: a\rContent-Length: 0\r\nContent-Length: 2\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", false},
		{"HTTP/1.1 200 O\rK\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nX Y: z\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nX: a\tb \xff\r\n\r\n", true},
	}
	for _, tt := range tests {
		var rh respHead
		if _, ok := parseResponse([]byte(tt.head), &rh, nil, false, &Exchange{}); ok != tt.ok {
			t.Errorf("%q: ok=%v, want %v", tt.head, ok, tt.ok)
		}
	}
}
