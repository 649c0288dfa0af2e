package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawTarget is an upstream written by hand on a plain TCP listener: it
// records every byte it receives, so that a test sees exactly what the
// gateway sent, framing included.
type rawTarget struct {
	addr string
	mu   sync.Mutex
	got  []*bytes.Buffer // one per connection, in accept order
}

// startRawTarget serves each connection's requests in turn; answer is
// told the request's index on its connection and returns false to close
// the connection without answering. Other requests get 200 "ok".
func startRawTarget(t *testing.T, answer func(n int, req *http.Request) bool) *rawTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rt := &rawTarget{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rec := &recorder{mu: &rt.mu, buf: new(bytes.Buffer)}
			rt.mu.Lock()
			rt.got = append(rt.got, rec.buf)
			rt.mu.Unlock()
			go rt.serve(c, rec, answer)
		}
	}()
	return rt
}

func (rt *rawTarget) serve(c net.Conn, rec *recorder, answer func(int, *http.Request) bool) {
	defer c.Close()
	br := bufio.NewReader(io.TeeReader(c, rec))
	for n := 0; ; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		if answer != nil && !answer(n, req) {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

// received returns what the target received, all connections together.
func (rt *rawTarget) received() string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var all strings.Builder
	for _, b := range rt.got {
		all.Write(b.Bytes())
	}
	return all.String()
}

type recorder struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// framingGateway starts a gateway of the given engine in front of target:
// /open/* is a plain route, /locked/* needs an API key.
func framingGateway(t *testing.T, engine, target string) *proc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
upstreams:
  - name: raw
    targets:
      - address: %s
services:
  - name: api
    upstream: raw
    routes:
      - name: open
        paths: [/open/*]
      - name: locked
        paths: [/locked/*]
        policies:
          - name: key-auth
consumers:
  - name: shop
    credentials:
      - type: key
        key: framing-test-key-0123456789
`, target))
	gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
	gw.waitReady(t)
	return gw
}

// dialGateway opens a raw client connection to the gateway.
func dialGateway(t *testing.T, gw *proc) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", gw.listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	return c, bufio.NewReader(c)
}

// readAnswer reads one response and its body from a raw connection.
func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return resp, string(b)
}

// expectEOF checks that the gateway closes the connection and sends
// nothing more.
func expectEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	b, err := io.ReadAll(br)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("connection not closed: %v", err)
	}
	if len(b) > 0 {
		t.Fatalf("bytes after the response: %q", b)
	}
}

// A request on a pooled connection that the target closes without
// answering is sent again only if its method is idempotent: a body-less
// POST the target may have run reaches it once and the client gets 502,
// a GET is retried on a new connection and succeeds.
func TestNoReplayOfNonIdempotentRequests(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		// Each connection answers its first request and closes on the
		// second after reading it, without answering.
		target := startRawTarget(t, func(n int, _ *http.Request) bool { return n == 0 })
		gw := framingGateway(t, engine, target.addr)
		c, br := dialGateway(t, gw)

		for _, method := range []string{"POST", "PATCH"} {
			io.WriteString(c, "GET /open/warm HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("warming the pool: %d %q", resp.StatusCode, body)
			}
			line := method + " /open/" + strings.ToLower(method) + " HTTP/1.1"
			io.WriteString(c, line+"\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
			resp, body := readAnswer(t, br, method)
			if resp.StatusCode != 502 || !strings.Contains(body, `"upstream_failed"`) {
				t.Fatalf("%s: %d %q, want 502 upstream_failed", method, resp.StatusCode, body)
			}
			if n := strings.Count(target.received(), line+"\r\n"); n != 1 {
				t.Fatalf("%s reached the target %d times, want once; it received:\n%s", method, n, target.received())
			}
			if resp.Close {
				c, br = dialGateway(t, gw)
			}
		}

		// DELETE too: fasthttp on its own would not retry it.
		for _, method := range []string{"GET", "DELETE"} {
			io.WriteString(c, "GET /open/warm HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("warming the pool: %d %q", resp.StatusCode, body)
			}
			line := method + " /open/" + strings.ToLower(method) + " HTTP/1.1"
			io.WriteString(c, line+"\r\nHost: x\r\n\r\n")
			if resp, body := readAnswer(t, br, method); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("%s: %d %q, want it retried on a new connection", method, resp.StatusCode, body)
			}
			if n := strings.Count(target.received(), line+"\r\n"); n != 2 {
				t.Fatalf("%s reached the target %d times, want twice (the lost one and the retry)", method, n)
			}
		}
	})
}

// requestTo returns the request the target received whose request line
// starts with prefix: its head and what followed it on the connection.
func requestTo(t *testing.T, target *rawTarget, prefix string) (head, rest string) {
	t.Helper()
	all := target.received()
	i := strings.Index(all, prefix)
	if i < 0 {
		t.Fatalf("the target never received %q; it received:\n%s", prefix, all)
	}
	head, rest, ok := strings.Cut(all[i:], "\r\n\r\n")
	if !ok {
		t.Fatalf("incomplete head at the target: %q", all[i:])
	}
	return head + "\r\n", rest
}

// canonicalAt returns the body of the request the target received whose
// request line starts with prefix, after checking that its framing is
// canonical: one Transfer-Encoding: chunked with canonical chunks, or one
// Content-Length.
func canonicalAt(t *testing.T, target *rawTarget, prefix string) string {
	t.Helper()
	head, rest := requestTo(t, target, prefix)
	lower := strings.ToLower(head)
	te := strings.Count(lower, "\r\ntransfer-encoding:")
	cl := strings.Count(lower, "\r\ncontent-length:")
	switch {
	case te == 1 && cl == 0 && strings.Contains(lower, "\r\ntransfer-encoding: chunked\r\n"):
		return canonicalChunked(t, rest)
	case te == 0 && cl == 1:
		i := strings.Index(lower, "\r\ncontent-length: ") + len("\r\ncontent-length: ")
		var n int
		fmt.Sscanf(head[i:], "%d", &n)
		if n > len(rest) {
			t.Fatalf("Content-Length %d, %d bytes followed", n, len(rest))
		}
		return rest[:n]
	}
	t.Fatalf("framing the target cannot read unambiguously:\n%s", head)
	return ""
}

var canonicalSize = regexp.MustCompile(`^[0-9a-f]+$`)

// canonicalChunked parses a chunked body that must be in canonical form
// (sizes in plain lower- or upper-case hex, no extensions, no trailers)
// and returns its data.
func canonicalChunked(t *testing.T, b string) string {
	t.Helper()
	var data strings.Builder
	for {
		size, rest, ok := strings.Cut(b, "\r\n")
		if !ok || !canonicalSize.MatchString(strings.ToLower(size)) {
			t.Fatalf("chunk size line %q is not canonical (body %q)", size, b)
		}
		var n int
		fmt.Sscanf(size, "%x", &n)
		if n == 0 {
			if !strings.HasPrefix(rest, "\r\n") {
				t.Fatalf("trailers or junk after the last chunk: %q", rest)
			}
			return data.String()
		}
		if len(rest) < n+2 || rest[n:n+2] != "\r\n" {
			t.Fatalf("chunk of %d bytes badly framed: %q", n, rest)
		}
		data.WriteString(rest[:n])
		b = rest[n+2:]
	}
}

// The framing rules of RFC 9112, byte for byte, on both engines.
func TestRequestFraming(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		target := startRawTarget(t, nil)
		gw := framingGateway(t, engine, target.addr)

		t.Run("HTTP/1.0 with Transfer-Encoding is refused and closed", func(t *testing.T) {
			c, br := dialGateway(t, gw)
			io.WriteString(c, "POST /open/http10 HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
			if resp, body := readAnswer(t, br, "POST"); resp.StatusCode != 400 {
				t.Fatalf("got %d %q, want 400", resp.StatusCode, body)
			}
			expectEOF(t, br)
			if strings.Contains(target.received(), "/open/http10") {
				t.Fatal("the request reached the target")
			}
		})

		// Extensions (quoted, with spaces) and a trailer: the target must
		// see neither.
		t.Run("chunked body is re-framed canonically", func(t *testing.T) {
			c, br := dialGateway(t, gw)
			io.WriteString(c, "POST /open/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"3;ext=\"a b\"\r\nabc\r\n004\r\ndefg\r\n0;last=1\r\nX-Trailer: t\r\n\r\n")
			if resp, body := readAnswer(t, br, "POST"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if data := canonicalAt(t, target, "POST /open/chunked "); data != "abcdefg" {
				t.Fatalf("the target got %q", data)
			}
		})

		// A trailer named Content-Length, and whitespace before an
		// extension: the event loops accept and drop them, the fasthttp
		// engine refuses them (docs/gateway.md); neither lets them through.
		t.Run("trailer named Content-Length never reaches the target", func(t *testing.T) {
			c, br := dialGateway(t, gw)
			io.WriteString(c, "POST /open/smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"5 ;a=b\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n")
			resp, body := readAnswer(t, br, "POST")
			switch {
			case engine == "evloop" && resp.StatusCode == 200:
				if data := canonicalAt(t, target, "POST /open/smuggle "); data != "hello" {
					t.Fatalf("the target got %q", data)
				}
			case engine == "fasthttp" && resp.StatusCode == 400:
				expectEOF(t, br)
			default:
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			// The trailer itself, not "99" alone, which a random request id
			// may hold.
			if all := target.received(); strings.Contains(strings.ToLower(all), "content-length: 99") || strings.Contains(all, ";a=b") {
				t.Fatalf("the client's framing reached the target:\n%s", all)
			}
		})

		t.Run("a malformed chunk size is refused", func(t *testing.T) {
			c, br := dialGateway(t, gw)
			io.WriteString(c, "POST /open/badchunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 4\r\nxyz\r\n0\r\n\r\n")
			if resp, body := readAnswer(t, br, "POST"); resp.StatusCode != 400 {
				t.Fatalf("got %d %q, want 400", resp.StatusCode, body)
			}
			expectEOF(t, br)
			if strings.Contains(target.received(), "xyz") {
				t.Fatal("the malformed body reached the target")
			}
		})

		for _, tc := range []struct {
			name, req string
			status    int
		}{
			{"Content-Length and Transfer-Encoding", "POST /open/r HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
			{"differing Content-Lengths", "POST /open/r HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
			{"signed Content-Length", "POST /open/r HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400},
			{"obsolete line folding", "GET /open/r HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 400},
			{"unknown coding", "POST /open/r HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		} {
			if engine == "fasthttp" && tc.status == 501 {
				tc.status = 400 // fasthttp's own refusal (docs/gateway.md)
			}
			t.Run(tc.name+" is refused", func(t *testing.T) {
				c, br := dialGateway(t, gw)
				io.WriteString(c, tc.req)
				if resp, body := readAnswer(t, br, "POST"); resp.StatusCode != tc.status {
					t.Fatalf("got %d %q, want %d", resp.StatusCode, body, tc.status)
				}
				expectEOF(t, br)
			})
		}

		t.Run("fragment is dropped", func(t *testing.T) {
			c, br := dialGateway(t, gw)
			io.WriteString(c, "GET /open/frag?q=1#section HTTP/1.1\r\nHost: x\r\n\r\n"+
				"GET /open/frag2#only HTTP/1.1\r\nHost: x\r\n\r\n")
			for i := 0; i < 2; i++ {
				if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 {
					t.Fatalf("got %d %q", resp.StatusCode, body)
				}
			}
			if head, _ := requestTo(t, target, "GET /open/frag?"); !strings.HasPrefix(head, "GET /open/frag?q=1 HTTP/1.1\r\n") {
				t.Fatalf("the target got %q", head)
			}
			if head, _ := requestTo(t, target, "GET /open/frag2"); !strings.HasPrefix(head, "GET /open/frag2 HTTP/1.1\r\n") {
				t.Fatalf("the target got %q", head)
			}
			if all := target.received(); strings.Contains(all, "section") || strings.Contains(all, "only") {
				t.Fatalf("the fragment reached the target:\n%s", all)
			}
		})

		for _, tc := range []struct{ name, method string }{
			{"not a token", "G@T"},
			{"lower case", "get"},
			{"mixed case", "Post"},
		} {
			t.Run("method "+tc.name+" is refused", func(t *testing.T) {
				c, br := dialGateway(t, gw)
				io.WriteString(c, tc.method+" /open/method-"+tc.method+" HTTP/1.1\r\nHost: x\r\n\r\n")
				if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 400 {
					t.Fatalf("got %d %q, want 400", resp.StatusCode, body)
				}
				if strings.Contains(target.received(), "method-"+tc.method) {
					t.Fatal("the request reached the target")
				}
			})
		}

		t.Run("an unknown upper-case method goes through", func(t *testing.T) {
			c, br := dialGateway(t, gw)
			io.WriteString(c, "PROPFIND /open/dav HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body := readAnswer(t, br, "PROPFIND"); resp.StatusCode != 200 {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			requestTo(t, target, "PROPFIND /open/dav HTTP/1.1\r\n")
		})

		t.Run("100-continue is answered by the gateway", func(t *testing.T) {
			c, br := dialGateway(t, gw)
			io.WriteString(c, "POST /open/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
			// The body is not sent before the 100: a gateway waiting for it
			// would never answer, and the deadline fails the read.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := br.ReadString('\n')
			if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
				t.Fatalf("first line %q %v, want a 100 Continue", line, err)
			}
			if line, err = br.ReadString('\n'); line != "\r\n" {
				t.Fatalf("the 100 Continue has header lines: %q %v", line, err)
			}
			io.WriteString(c, "data")
			if resp, body := readAnswer(t, br, "POST"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			head, rest := requestTo(t, target, "POST /open/expect ")
			if !strings.HasPrefix(rest, "data") {
				t.Fatalf("the target got body %q", rest)
			}
			if strings.Contains(strings.ToLower(head), "\r\nexpect:") {
				t.Fatalf("the expectation the gateway answered reached the target:\n%s", head)
			}
		})

		t.Run("100-continue refused by a policy gets the final status only", func(t *testing.T) {
			c, br := dialGateway(t, gw)
			io.WriteString(c, "POST /locked/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, body := readAnswer(t, br, "POST")
			if resp.StatusCode != 401 {
				t.Fatalf("got %d %q, want 401 without a 100 Continue first", resp.StatusCode, body)
			}
			if strings.Contains(target.received(), "/locked/expect") {
				t.Fatal("the refused request reached the target")
			}
		})
	})
}
