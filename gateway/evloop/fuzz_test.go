package evloop

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The fuzz targets here read the same bytes with the engine's parser and
// with net/http's, and require the two to agree: on accepting or refusing,
// on the method, target, headers and body, and on where each message ends
// (a disagreement there is what request smuggling is made of). Where the
// engine refuses what net/http reads, the input must match one of the
// documented refusals in stricterRequest / stricterResponse (docs/gateway.md,
// "What the parser refuses"). Where the engine reads what net/http refuses,
// the input must match a documented leniency in lenientRequest /
// lenientResponse, each with the reason it is safe.

// fuzzMaxHead is the engine's default Config.MaxHeaderBytes.
const fuzzMaxHead = 16 << 10

// outcome is how one reader took one message.
type outcome int

const (
	accepted   outcome = iota
	refused            // the head or the body is malformed
	incomplete         // the reader waits for more bytes
)

func (o outcome) String() string {
	return [...]string{"accepted", "refused", "incomplete"}[o]
}

// message is one reading of one message, in terms both readers share.
type message struct {
	outcome outcome
	why     string
	method  string
	target  string
	host    string
	status  int
	header  http.Header // without the framing headers, which body and n cover
	body    []byte
	n       int // bytes from the start of the input through the end of the body
	close   bool
	tunnel  bool   // the connection stops carrying HTTP messages after this one
	bug     string // the engine's own pieces disagree with each other
}

// rawHead is an independent, naive split of a message head, for the
// predicates of the lists of differences. It is not the engine's parser.
type rawHead struct {
	first  string   // request or status line, without its line end
	fields []string // the header lines, without their line ends
	bareLF bool     // some line of the head ends in a bare LF
	folded bool     // some header line starts with SP or HT
	size   int      // bytes through the empty line (the whole input if none)
	chunks rawChunks
	isHead bool // the response answers a HEAD request
}

// rawChunks is a naive reading of what follows a head as a chunked body,
// for the predicates only.
type rawChunks struct {
	sizeBWS    bool // whitespace between a chunk size and ';'
	longSize   bool // a chunk size of more than 15 hex digits
	bareLF     bool // a chunk-size or trailer line ends in a bare LF
	badTrailer bool // a trailer line net/http's header reader refuses
	excess     bool // more framing than net/http's allowance (16 KiB beyond 16 bytes a chunk plus twice its data)
	longLine   bool // a chunk-size line or the trailer section beyond net/http's 4 KiB buffer
}

func splitChunks(b []byte) rawChunks {
	var c rawChunks
	var excess int64
	next := func() ([]byte, bool) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, false
		}
		ln := b[:i]
		b = b[i+1:]
		if !bytes.HasSuffix(ln, []byte("\r")) {
			c.bareLF = true
		}
		return bytes.TrimSuffix(ln, []byte("\r")), true
	}
	for {
		ln, ok := next()
		if !ok {
			return c
		}
		if len(ln) >= 4094 {
			c.longLine = true
		}
		size, _, ext := strings.Cut(string(ln), ";")
		if trimmed := strings.TrimRight(size, " \t"); ext && trimmed != size {
			c.sizeBWS = true
		}
		size = strings.TrimRight(size, " \t")
		if len(size) > 15 {
			c.longSize = true
		}
		n, err := strconv.ParseUint(size, 16, 63)
		if err != nil || n > uint64(len(b)) {
			return c
		}
		excess = max(excess+int64(len(ln))+2-16-2*int64(n), 0)
		if excess > 16<<10 {
			c.excess = true
		}
		if n == 0 {
			break
		}
		b = b[n:]
		if !bytes.HasPrefix(b, []byte("\r\n")) {
			return c
		}
		b = b[2:]
	}
	start := len(b)
	for {
		ln, ok := next()
		if start-len(b) > 4000 {
			c.longLine = true
		}
		if !ok || len(ln) == 0 {
			return c
		}
		name, value, ok := strings.Cut(string(ln), ":")
		if !ok || !validFieldName(name) || !validFieldValue(value) {
			c.badTrailer = true
		}
	}
}

func splitHead(b []byte) rawHead {
	var h rawHead
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[h.size:], '\n')
		if j < 0 {
			h.size = len(b)
			return h
		}
		ln := b[h.size : h.size+j]
		h.size += j + 1
		if !bytes.HasSuffix(ln, []byte("\r")) {
			h.bareLF = true
		}
		ln = bytes.TrimSuffix(ln, []byte("\r"))
		switch {
		case i == 0:
			h.first = string(ln)
			continue
		case len(ln) == 0:
			if te := h.values("Transfer-Encoding"); len(te) > 0 {
				h.chunks = splitChunks(b[h.size:])
			}
			return h
		case ln[0] == ' ' || ln[0] == '\t':
			h.folded = true
		}
		h.fields = append(h.fields, string(ln))
	}
}

// values returns the raw values of the header lines named name.
func (h *rawHead) values(name string) []string {
	var vs []string
	for _, f := range h.fields {
		n, v, ok := strings.Cut(f, ":")
		if ok && strings.EqualFold(n, name) {
			vs = append(vs, strings.Trim(v, " \t"))
		}
	}
	return vs
}

func (h *rawHead) requestLine() (method, target, version string) {
	method, rest, _ := strings.Cut(h.first, " ")
	target, version, _ = strings.Cut(rest, " ")
	return method, target, version
}

// difference is one documented way in which the engine's reading may
// differ from net/http's: applies reports whether it covers the input.
type difference struct {
	name    string
	applies func(h *rawHead) bool
}

// stricterRequest lists what the engine refuses in a request although
// net/http reads it. Each is safe because a refusal never reaches a
// target; each is there because some other HTTP reader on the path could
// take the message differently, which is how a request is smuggled.
var stricterRequest = []difference{
	// RFC 9112 §2.2 allows a bare LF as a line end, but not every hop does:
	// a target reading "X: a\nContent-Length: 5" as one line frames
	// the body differently.
	{"bare LF line end", func(h *rawHead) bool { return h.bareLF }},
	// obs-fold: RFC 9112 §5.2 lets a server refuse it, and its unfolding
	// differs between readers.
	{"obsolete line folding", func(h *rawHead) bool { return h.folded }},
	// Only HTTP/1.0 and HTTP/1.1 are spoken on this listener (505);
	// net/http reads any HTTP/1.x and the HTTP/2 preface.
	{"HTTP version other than 1.0 and 1.1", func(h *rawHead) bool {
		_, _, v := h.requestLine()
		return v != "HTTP/1.0" && v != "HTTP/1.1"
	}},
	// Tunnels are not offered (501).
	{"CONNECT", func(h *rawHead) bool { m, _, _ := h.requestLine(); return m == "CONNECT" }},
	// Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET, and a
	// target that compared without regard to case would run a request the
	// gateway routed as another method. The engine may take upper-case
	// letters, '-' and '_' only.
	{"method other than upper-case letters, '-' and '_'", func(h *rawHead) bool {
		m, _, _ := h.requestLine()
		return strings.Trim(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != ""
	}},
	// RFC 9112 §6.1: both headers together are an error a hop may resolve
	// either way; net/http lets Transfer-Encoding win, the engine refuses.
	{"Content-Length with Transfer-Encoding", func(h *rawHead) bool {
		return len(h.values("Content-Length")) > 0 && len(h.values("Transfer-Encoding")) > 0
	}},
	// net/http ignores Transfer-Encoding in an HTTP/1.0 request and reads
	// no body; a hop that honoured it would read one: the engine refuses.
	{"Transfer-Encoding in an HTTP/1.0 request", func(h *rawHead) bool {
		_, _, v := h.requestLine()
		return v == "HTTP/1.0" && len(h.values("Transfer-Encoding")) > 0
	}},
	// RFC 9112 §3.2: a request to a server names its target by path
	// (origin-form), by URI with a host (absolute-form) or as "*"; net/http
	// also takes a bare "scheme:rest", "scheme://" without a host and a
	// fragment alone.
	{"target other than /path, scheme://host/path or *", func(h *rawHead) bool {
		_, t, _ := h.requestLine()
		auth, ok := authority(t)
		return !strings.HasPrefix(t, "/") && t != "*" && (!ok || auth == "")
	}},
	// The authority of an absolute-form target becomes the request's host,
	// which is routed on and forwarded: it is held to the characters of
	// RFC 3986's host and port as a Host header is. That refuses userinfo
	// too, which RFC 9110 §4.2.4 has a recipient treat as an error:
	// net/http drops it from the host, a hop that kept it would route the
	// request elsewhere. And a percent-escape, which net/http decodes in a
	// target's host but not in a Host header.
	{"absolute-form target with userinfo, a percent-escape or odd characters in the host", func(h *rawHead) bool {
		_, t, _ := h.requestLine()
		auth, ok := authority(t)
		return ok && (!stdValidHost(auth) || strings.Contains(auth, "%"))
	}},
	// A body length is at most 18 digits (under 1 EiB); net/http takes 19.
	{"Content-Length of more than 18 digits", longLength},
	// Heads over Config.MaxHeaderBytes get 431; net/http's limit is 1 MiB.
	{"head over 16 KiB", func(h *rawHead) bool { return h.size > fuzzMaxHead }},
}

// lenientRequest lists what the engine reads in a request although
// net/http refuses it, each with why forwarding it is safe.
var lenientRequest = []difference{
	// Content-Length repeated with the same number written differently
	// ("5" and "05"): every reader that takes the header takes 5.
	{"Content-Length repeated with the same number written differently", func(h *rawHead) bool {
		cl := h.values("Content-Length")
		for _, v := range cl {
			a, err1 := strconv.ParseUint(v, 10, 63)
			b, err2 := strconv.ParseUint(cl[0], 10, 63)
			if err1 != nil || err2 != nil || a != b {
				return false
			}
		}
		return len(cl) > 1
	}},
	// The target's path is passed on as sent, percent-escapes and all; the
	// gateway's dispatcher routes on its own decoded, normalised path and
	// sends the target that path re-escaped, so a "%zz" reaches no target
	// as written.
	{"malformed percent-escape in the target", func(h *rawHead) bool {
		_, t, _ := h.requestLine()
		for i := strings.IndexByte(t, '%'); i >= 0; i = strings.IndexByte(t, '%') {
			if i+2 >= len(t) || unhex(t[i+1]) < 0 || unhex(t[i+2]) < 0 {
				return true
			}
			t = t[i+3:]
		}
		return false
	}},
	// The engine may drop a fragment before it reads the target (RFC 9110
	// §4.2.4: it is the client's own); net/http reads "http://h#x" as the
	// host "h#x" and refuses it.
	{"fragment right after an absolute-form host", func(h *rawHead) bool {
		_, t, _ := h.requestLine()
		_, rest, ok := strings.Cut(t, "://")
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			rest = rest[:i]
		}
		return ok && strings.Contains(rest, "#")
	}},
	// An absolute-form target's host is held to the characters of a host
	// and port, as a Host header is, and not parsed further: net/http
	// takes "Host: h:x" but refuses the target "http://h:x/". The host is
	// only routed on and forwarded, as a Host header would be.
	{"absolute-form host net/http's URL parser refuses", func(h *rawHead) bool {
		_, t, _ := h.requestLine()
		auth, ok := authority(t)
		if !ok || !stdValidHost(auth) {
			return false
		}
		_, err := url.Parse("http://" + auth + "/")
		return err != nil
	}},
}

// stricterChunked lists what the engine refuses in a chunked body, of a
// request or a response, although net/http reads it.
var stricterChunked = []difference{
	// A bare LF in the chunked framing: net/http takes one as the end of
	// the trailer section, the engine (and RFC 9112 §7.1) does not; a
	// body that ends at different places for two hops smuggles what
	// follows.
	{"bare LF in the chunked framing", func(h *rawHead) bool { return h.chunks.bareLF }},
	// Chunk sizes are at most 15 hex digits (a body under 1 EiB); net/http
	// takes 16.
	{"chunk size of more than 15 hex digits", func(h *rawHead) bool { return h.chunks.longSize }},
}

// lenientChunked lists what the engine reads in a chunked body although
// net/http refuses it.
var lenientChunked = []difference{
	// RFC 9112 §7.1.1 allows whitespace before a chunk extension's ';';
	// net/http refuses it. Every reader that takes the line at all reads
	// the same size from it.
	{"whitespace before a chunk extension", func(h *rawHead) bool { return h.chunks.sizeBWS }},
	// The engine checks the trailer section's line structure (CRLF line
	// ends, no bare CR or LF) but not the fields in it: the end of the
	// body is the same for every reader, whatever the lines say.
	{"malformed trailer field", func(h *rawHead) bool { return h.chunks.badTrailer }},
	// net/http bounds framing overhead and line lengths against slow
	// reads; the engine streams the body with bounded memory whatever the
	// framing costs, and the request timeouts bound the time.
	{"chunk framing beyond net/http's allowance", func(h *rawHead) bool { return h.chunks.excess || h.chunks.longLine }},
}

// stricterResponse lists what the engine refuses in a response from a
// target although net/http reads it: the client gets a 502 instead.
var stricterResponse = []difference{
	{"obsolete line folding", func(h *rawHead) bool { return h.folded }},
	// The status line is HTTP/1.0 or HTTP/1.1, one space, a status code
	// of 100 to 999, and a reason after one more space if any (RFC 9112
	// §4); net/http also takes other versions, more spaces and codes
	// under 100.
	{"status line other than HTTP/1.x, one space, code from 100", func(h *rawHead) bool {
		return !statusLine.MatchString(h.first)
	}},
	// The engine passes the head on to the client: a control byte in it
	// (a lone CR above all) or a name that is not a token could make the
	// client see other lines, and so another framing, than the engine
	// did. net/http takes names with spaces and controls in the reason.
	{"control byte or malformed field name in the head", func(h *rawHead) bool {
		if !validFieldValue(h.first) {
			return true
		}
		for _, f := range h.fields {
			name, value, _ := strings.Cut(f, ":")
			if !validFieldName(name) || !validFieldValue(value) {
				return true
			}
		}
		return false
	}},
	// The engine reads the body of an HTTP/1.0 response with
	// Transfer-Encoding: chunked as chunked (see lenientResponse), so a
	// malformed one fails; net/http reads until the close.
	{"malformed chunked body in an HTTP/1.0 response", func(h *rawHead) bool {
		return strings.HasPrefix(h.first, "HTTP/1.0") && len(h.values("Transfer-Encoding")) > 0
	}},
	{"Content-Length of more than 18 digits", longLength},
}

var statusLine = regexp.MustCompile(`^HTTP/1\.[01] [1-9][0-9][0-9]( |$)`)

// lenientResponse lists what the engine reads in a response although
// net/http refuses it, or reads differently. The engine forwards a
// response body with its framing unchanged (but for dechunking it for an
// HTTP/1.0 client), so a client reads the body the engine read.
var lenientResponse = []difference{
	// RFC 9112 §6.3: with a final "chunked" coding the body is chunked,
	// with another final coding it runs until the connection closes. The
	// codings reach the client unchanged; net/http takes "chunked" only.
	{"transfer codings other than a lone chunked", func(h *rawHead) bool {
		te := h.values("Transfer-Encoding")
		return len(te) > 1 || len(te) == 1 && !strings.EqualFold(te[0], "chunked")
	}},
	// RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
	// framing, to be processed and the connection closed after. The engine
	// reads the chunked body and never reuses an HTTP/1.0 connection;
	// net/http ignores the header and reads until the close.
	{"Transfer-Encoding in an HTTP/1.0 response", func(h *rawHead) bool {
		return strings.HasPrefix(h.first, "HTTP/1.0") && len(h.values("Transfer-Encoding")) > 0
	}},
	// Content-Length does not frame a response that Transfer-Encoding
	// frames (RFC 9112 §6.3; the connection is not reused after) or that
	// has no body (HEAD, 1xx, 204, 304): the engine ignores a malformed or
	// conflicting one there, net/http refuses the response.
	{"malformed Content-Length that frames nothing", func(h *rawHead) bool {
		cl := h.values("Content-Length")
		bad := false
		for _, v := range cl {
			_, err := strconv.ParseUint(v, 10, 63)
			bad = bad || err != nil || v != cl[0]
		}
		status := ""
		if len(h.first) >= 12 {
			status = h.first[9:12]
		}
		return bad && (h.isHead || len(h.values("Transfer-Encoding")) > 0 ||
			strings.HasPrefix(status, "1") || status == "204" || status == "304")
	}},
}

func longLength(h *rawHead) bool {
	for _, v := range h.values("Content-Length") {
		if len(v) > 18 {
			return true
		}
	}
	return false
}

// authority returns the authority of an absolute-form target, one that
// starts with a scheme and "://".
func authority(target string) (string, bool) {
	scheme, rest, ok := strings.Cut(target, "://")
	if !ok || !uriScheme.MatchString(scheme) {
		return "", false
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest, true
}

var uriScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// covered returns the name of the first difference in list that covers
// the input, or "".
func covered(list []difference, h *rawHead) string {
	for _, d := range list {
		if d.applies(h) {
			return d.name
		}
	}
	return ""
}

// ---- the engine's reading

// engineRequest reads the first request in b as the engine does:
// serveHeads, startExchange and the request body's framing.
func engineRequest(b []byte, split int) message {
	skip := skipEmptyLines(b)
	b = b[skip:]
	end := headEnd(b, 0)
	if split < len(b) && headEnd(b[:split], 0) < 0 {
		// A head arriving in two pieces ends at the same place.
		if got := headEnd(b, split); got != end {
			return message{bug: "headEnd resumed from a split disagrees"}
		}
	}
	switch {
	case end < 0 && len(b) < fuzzMaxHead:
		return message{outcome: incomplete, why: "head"}
	case end < 0 || end > fuzzMaxHead:
		return message{outcome: refused, status: 431, why: "request head too large"}
	}
	var req Request
	if rj := parseRequest(b[:end], &req); rj.status != 0 {
		return message{outcome: refused, status: rj.status, why: rj.msg}
	}
	m := message{
		outcome: accepted,
		method:  string(req.Method),
		target:  string(req.URI),
		host:    string(req.Host),
		header:  http.Header{},
		close:   req.Close,
		tunnel:  req.Upgrade,
	}
	for _, h := range req.Headers {
		m.header.Add(textproto.CanonicalMIMEHeaderKey(string(h.Name)), string(h.Value))
	}
	if p := req.Path; string(p) != "*" && !bytes.HasSuffix(req.URI, appendQuery(append([]byte(nil), p...), req.Query)) {
		return message{bug: "Path and Query are not the end of the target"}
	}
	rest := b[end:]
	switch {
	case req.ContentLength > 0:
		if int64(len(rest)) < req.ContentLength {
			return message{outcome: incomplete, why: "body"}
		}
		m.body = rest[:req.ContentLength]
		m.n = skip + end + int(req.ContentLength)
	case req.ContentLength < 0:
		body, n, o, bug := engineChunked(rest, split)
		if o != accepted || bug != "" {
			return message{outcome: o, why: "chunked body", bug: bug}
		}
		m.body, m.n = body, skip+end+n
	default:
		m.n = skip + end
	}
	normalize(m.header)
	return m
}

func appendQuery(b, q []byte) []byte {
	if q != nil {
		b = append(append(b, '?'), q...)
	}
	return b
}

// engineChunked reads a chunked body at the start of p with both of the
// engine's scanners: scan (in two pieces, split where the fuzzer says)
// and dechunk, which must agree. It returns the data and the length of
// the body with its framing.
func engineChunked(p []byte, split int) (data []byte, n int, o outcome, bug string) {
	var s body
	s.init(bodyChunked, 0)
	split = min(split, len(p))
	n1, ok := s.scan(p[:split])
	scanned := n1
	if ok && !s.done() {
		var n2 int
		n2, ok = s.scan(p[n1:])
		scanned += n2
	}
	var d body
	d.init(bodyChunked, 0)
	cp := append([]byte(nil), p...)
	consumed, got, dok := d.dechunk(cp[:split])
	data = append(data, cp[:got]...)
	if dok && !d.done() {
		var c2 int
		c2, got, dok = d.dechunk(cp[consumed:])
		data = append(data, cp[consumed:consumed+got]...)
		consumed += c2
	}
	switch {
	case ok != dok || s.done() != d.done() || ok && s.done() && scanned != consumed:
		return nil, 0, refused, "scan and dechunk disagree"
	case !ok:
		return nil, 0, refused, ""
	case !s.done():
		return nil, 0, incomplete, ""
	}
	return data, consumed, accepted, ""
}

// ---- net/http's reading

// stdRequest reads the first request in b as net/http's server does:
// http.ReadRequest, the checks of its connection loop, and the body.
// Leading empty lines are skipped as the engine does (RFC 9112 §2.2).
func stdRequest(b []byte) message {
	skip := 0
	for bytes.HasPrefix(b[skip:], []byte("\r\n")) {
		skip += 2
	}
	src := bytes.NewReader(b[skip:])
	br := bufio.NewReader(src)
	req, err := http.ReadRequest(br)
	if err != nil {
		return message{outcome: stdOutcome(err), why: err.Error()}
	}
	// What net/http's server checks after ReadRequest, which leaves Host
	// out of req.Header: the head's fields as net/http's reader has them.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(b[skip:])))
	tp.ReadLine()
	fields, _ := tp.ReadMIMEHeader()
	hosts, haveHost := fields["Host"]
	switch {
	case req.ProtoMajor != 1:
		return message{outcome: refused, why: "unsupported protocol version"}
	case req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && req.Method != "CONNECT":
		return message{outcome: refused, why: "missing required Host header"}
	case len(hosts) == 1 && !stdValidHost(hosts[0]):
		return message{outcome: refused, why: "malformed Host header"}
	}
	for k, vs := range req.Header {
		if !validFieldName(k) {
			return message{outcome: refused, why: "invalid header name"}
		}
		for _, v := range vs {
			if !validFieldValue(v) {
				return message{outcome: refused, why: "invalid header value"}
			}
		}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return message{outcome: stdOutcome(err), why: "body: " + err.Error()}
	}
	m := message{
		outcome: accepted,
		method:  req.Method,
		target:  req.RequestURI,
		host:    req.Host,
		header:  req.Header,
		body:    body,
		n:       skip + len(b[skip:]) - src.Len() - br.Buffered(),
		close:   req.Close,
	}
	normalize(m.header)
	return m
}

// stdOutcome tells net/http's "the input ended" errors from its refusals.
func stdOutcome(err error) outcome {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "unexpected EOF") {
		return incomplete
	}
	return refused
}

// normalize drops from h what the two readers keep differently although
// the message means the same: Host (compared as the host), the framing
// headers (compared as the body and where the message ends), and the Cache-Control net/http adds for
// Pragma: no-cache.
func normalize(h http.Header) {
	delete(h, "Host")
	delete(h, "Content-Length")
	delete(h, "Transfer-Encoding")
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && len(h["Cache-Control"]) == 1 && h["Cache-Control"][0] == "no-cache" {
		delete(h, "Cache-Control")
	}
}

// stdValidHost is RFC 3986's host and port characters, as net/http's
// server checks them.
func stdValidHost(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func validFieldName(v string) bool {
	for i := 0; i < len(v); i++ {
		if !isTchar(v[i]) {
			return false
		}
	}
	return v != ""
}

func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// ---- the comparison

// compareRequests reads up to four pipelined requests from data with both
// readers and fails t on any difference not in the documented lists.
func compareRequests(t *testing.T, data []byte, split int) {
	for i := 0; i < 4 && len(data) > 0; i++ {
		ev, std := engineRequest(data, split), stdRequest(data)
		if ev.bug != "" {
			t.Fatalf("request %q: %s", data, ev.bug)
		}
		if ev.outcome == accepted && std.outcome == accepted {
			compareMessages(t, data, ev, std)
			if ev.close || ev.tunnel {
				return
			}
			data = data[ev.n:]
			continue
		}
		h := splitHead(data[skipEmptyLines(data):])
		checkDifference(t, "request", data, &h, ev, std, stricterRequest, lenientRequest)
		return
	}
}

// checkDifference checks two readings of which at most one accepted.
func checkDifference(t *testing.T, kind string, data []byte, h *rawHead, ev, std message, stricter, lenient []difference) {
	t.Helper()
	stricter = append(stricter[:len(stricter):len(stricter)], stricterChunked...)
	lenient = append(lenient[:len(lenient):len(lenient)], lenientChunked...)
	switch {
	case ev.outcome == std.outcome:
	case ev.outcome == incomplete:
		// The engine waits for more where net/http already decided; it
		// decides too once the head or body is complete. But a message
		// net/http takes as complete must be complete for the engine.
		if std.outcome == accepted && covered(lenient, h) == "" {
			t.Fatalf("%s %q: net/http accepts a message the engine still waits for (%s)", kind, data, ev.why)
		}
	case std.outcome == incomplete:
		if ev.outcome == accepted && covered(lenient, h) == "" {
			t.Fatalf("%s %q: the engine accepts a message net/http still waits for (%s)", kind, data, std.why)
		}
	case ev.outcome == refused:
		if covered(stricter, h) == "" {
			t.Fatalf("%s %q: the engine refuses (%d %s), net/http accepts: not a documented refusal", kind, data, ev.status, ev.why)
		}
	default:
		if covered(lenient, h) == "" {
			t.Fatalf("%s %q: the engine accepts, net/http refuses (%s): not a documented leniency", kind, data, std.why)
		}
	}
}

func compareMessages(t *testing.T, data []byte, ev, std message) {
	t.Helper()
	target := std.target
	if i := strings.IndexByte(target, '#'); i >= 0 && ev.target == target[:i] {
		// The engine may drop a fragment (RFC 9110 §4.2.4).
		target = target[:i]
	}
	switch {
	case ev.method != std.method:
		t.Fatalf("%q: method %q, net/http %q", data, ev.method, std.method)
	case ev.target != target:
		t.Fatalf("%q: target %q, net/http %q", data, ev.target, std.target)
	case ev.host != std.host:
		t.Fatalf("%q: host %q, net/http %q", data, ev.host, std.host)
	case ev.status != std.status:
		t.Fatalf("%q: status %d, net/http %d", data, ev.status, std.status)
	case !reflect.DeepEqual(ev.header, std.header):
		t.Fatalf("%q: headers %q, net/http %q", data, ev.header, std.header)
	case !bytes.Equal(ev.body, std.body):
		t.Fatalf("%q: body %q, net/http %q", data, ev.body, std.body)
	case ev.n != std.n:
		t.Fatalf("%q: message ends after %d bytes, net/http %d", data, ev.n, std.n)
	case ev.close != std.close:
		t.Fatalf("%q: close %v, net/http %v", data, ev.close, std.close)
	}
}

// FuzzRequest reads client bytes as the engine does and as net/http does.
func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		compareRequests(t, data, int(split))
	})
}

// requestSeeds are the framing cases the engine has been taught, kept as
// a regression corpus (hand-written; inputs the fuzzer found are files in
// testdata/fuzz/FuzzRequest).
var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nX-A:  v \r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET http://example.com:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
	"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n",
	// Body-less POST (the one that must never be replayed), then another.
	"POST /pay HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\nPOST /pay HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\ncontent-length: 42\r\n\r\n" + strings.Repeat("x", 42),
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0000000000000000005\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\nhello",
	// Chunked, with extensions and trailers.
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 4\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 ;ext\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\t\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n000ff\r\n" + strings.Repeat("z", 255) + "\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abcdef0\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	// Content-Length with Transfer-Encoding: net/http lets chunked win.
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	// HTTP/1.0 with Transfer-Encoding: net/http reads no body.
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	// Fragments.
	"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a?q=1#frag HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET #frag HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET http://h/a#f HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET http://h#x HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET http://[::1]:80/ HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET mailto:a HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n",
	// Methods.
	"get / HTTP/1.1\r\nHost: h\r\n\r\n",
	"Get / HTTP/1.1\r\nHost: h\r\n\r\n",
	"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
	"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n",
	"PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n",
	"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	// Expect: 100-continue, with and without the body following.
	"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
	"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
	// Malformed heads.
	"GET / HTTP/1.1\nHost: h\n\n",
	"GET / HTTP/1.1\r\nHost: h\nX: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
	"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / http/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET a HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", fuzzMaxHead) + "\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", fuzzMaxHead),
}

// ---- responses

// engineResponse reads the first response in b as the engine does for a
// client of the given HTTP minor version that sent a HEAD request or not
// (pumpResponse and startResponse): the head parsed, the body framed,
// and the head the client gets read back with net/http's reader.
func engineResponse(b []byte, isHead, http10 bool, split int) message {
	end := headEnd(b, 0)
	switch {
	case end < 0 && len(b) >= bufSize:
		return message{outcome: refused, why: "head fills the buffer"}
	case end < 0:
		return message{outcome: incomplete, why: "head"}
	}
	var rh respHead
	out, ok := parseResponse(b[:end], &rh, nil, http10, &Exchange{})
	if !ok {
		return message{outcome: refused, why: "malformed response head"}
	}
	m := message{outcome: accepted, status: rh.status, n: end, tunnel: rh.status == 101}
	// What the client reads: the head as the engine wrote it.
	if !(http10 && rh.status < 200) {
		tp := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(out), strings.NewReader("\r\n"))))
		tp.ReadLine()
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return message{bug: "the head sent to the client is unreadable: " + err.Error()}
		}
		m.header = http.Header(h)
		normalize(m.header)
	}
	if rh.badLength && !isHead && rh.status >= 200 && rh.status != 204 && rh.status != 304 && !rh.te {
		return message{outcome: refused, why: "bad Content-Length"}
	}
	rest := b[end:]
	switch {
	case rh.status < 200, isHead, rh.status == 204, rh.status == 304:
	case rh.te && rh.chunked:
		body, n, o, bug := engineChunked(rest, split)
		if o != accepted || bug != "" {
			return message{outcome: o, why: "chunked body", bug: bug}
		}
		m.body, m.n = body, end+n
	case !rh.te && rh.haveCL:
		if int64(len(rest)) < rh.cl {
			return message{outcome: incomplete, why: "body"}
		}
		m.body, m.n = rest[:rh.cl], end+int(rh.cl)
	default:
		m.body, m.n, m.close = rest, len(b), true
	}
	return m
}

// stdResponse reads the first response in b as net/http's client does.
func stdResponse(b []byte, isHead bool) message {
	src := bytes.NewReader(b)
	br := bufio.NewReader(src)
	method := "GET"
	if isHead {
		method = "HEAD"
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return message{outcome: stdOutcome(err), why: err.Error()}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return message{outcome: stdOutcome(err), why: "body: " + err.Error()}
	}
	for _, h := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer"} {
		delete(resp.Header, h)
	}
	normalize(resp.Header)
	return message{
		outcome: accepted,
		status:  resp.StatusCode,
		header:  resp.Header,
		body:    body,
		n:       len(b) - src.Len() - br.Buffered(),
		close: !isHead && resp.StatusCode >= 200 && resp.StatusCode != 204 && resp.StatusCode != 304 &&
			resp.ContentLength < 0 && len(resp.TransferEncoding) == 0,
		tunnel: resp.StatusCode == 101,
	}
}

// compareResponses reads up to four responses from data with both
// readers, as the answers to requests of the given kind.
func compareResponses(t *testing.T, data []byte, isHead, http10 bool, split int) {
	for i := 0; i < 4 && len(data) > 0; i++ {
		ev, std := engineResponse(data, isHead, http10, split), stdResponse(data, isHead)
		if ev.bug != "" {
			t.Fatalf("response %q: %s", data, ev.bug)
		}
		h := splitHead(data)
		h.isHead = isHead
		if ev.outcome != accepted || std.outcome != accepted {
			checkDifference(t, "response", data, &h, ev, std, stricterResponse, lenientResponse)
			return
		}
		if covered(lenientResponse, &h) != "" {
			// The engine reads this one its own documented way.
			return
		}
		if ev.header == nil {
			ev.header = std.header // an interim response an HTTP/1.0 client does not get
		}
		compareMessages(t, data, ev, std)
		if ev.close || ev.tunnel {
			return
		}
		data = data[ev.n:]
	}
}

// FuzzChunked reads a chunked request body with the engine's two
// scanners (each in two pieces) and with net/http's.
func FuzzChunked(f *testing.F) {
	for _, s := range chunkedSeeds {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	const head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		compareRequests(t, append([]byte(head), data...), len(head)+int(split))
	})
}

var chunkedSeeds = []string{
	"0\r\n\r\n",
	"5\r\nhello\r\n0\r\n\r\n",
	"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n",
	"000ff\r\n" + strings.Repeat("z", 255) + "\r\n0\r\n\r\n",
	"3 4\r\nabc\r\n0\r\n\r\n",
	"3 ;ext\r\nabc\r\n0\r\n\r\n",
	"3;ext=\"q;\\\"\"\r\nabc\r\n0\r\n\r\n",
	"3\t\r\nabc\r\n0\r\n\r\n",
	"3\r\nabc\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n",
	"0\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"0\r\nX: a\nGET / HTTP/1.1\r\n\r\n",
	"0\r\n\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"0\n\r\n",
	"3\nabc\r\n0\r\n\r\n",
	"3\r\nabcd\r\n0\r\n\r\n",
	"3\r\nab\r\n0\r\n\r\n",
	"-3\r\nabc\r\n0\r\n\r\n",
	"0x3\r\nabc\r\n0\r\n\r\n",
	"fffffffffffffff\r\n",
	"1234567890abcdef0\r\n",
	"0000000000000003\r\nabc\r\n0\r\n\r\n",
	"\r\n",
	"0\r\n folded: x\r\n\r\n",
	"0\r\nno colon\r\n\r\n",
	"1;" + strings.Repeat("e", 5000) + "\r\nx\r\n0\r\n\r\n",
}

// FuzzResponse reads target bytes as the engine does and as net/http
// does, for GET and HEAD requests from HTTP/1.1 and HTTP/1.0 clients.
func FuzzResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false, false, uint16(len(s)/2))
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), true, false, uint16(0))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), false, true, uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, isHead, http10 bool, split uint16) {
		compareResponses(t, data, isHead, http10, int(split))
	})
}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nKeep-Alive: t=5\r\nContent-Length: 2\r\nTE: x\r\nTrailer: y\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
	"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
	"HTTP/1.0 200 OK\r\n\r\nold style",
	"HTTP/1.0 404 Not Found\nContent-Length: 2\n\nno",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00",
	"HTTP/1.1 204\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 4\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\nHTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\rContent-Length: 0\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX Y: z\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n: z\r\nContent-Length: 0\r\n\r\n",
	"HTTP/2 200\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200OK\r\n\r\n",
	"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
}
