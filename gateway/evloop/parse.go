package evloop

import "bytes"

// reject is a request the engine answers itself, with Connection: close.
// A zero status means the head was accepted.
type reject struct {
	status int
	msg    string
}

// headEnd returns the length of the head at the start of b, through the
// empty line, or -1 when it is not complete yet. from is how far an
// earlier call already looked, so that a head arriving in small pieces is
// not rescanned from the start every time. A bare LF also ends the head so
// that a client using bare LFs gets its 400 at once instead of a timeout.
func headEnd(b []byte, from int) int {
	if from > 2 {
		from -= 2
	} else {
		from = 0
	}
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return -1
		}
		i += from
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
		from = i + 1
	}
}

// skipEmptyLines returns how many CRLFs precede the request line: RFC 9112
// §2.2 lets a server ignore them, and some clients send one after a body.
func skipEmptyLines(b []byte) int {
	n := 0
	for n+1 < len(b) && b[n] == '\r' && b[n+1] == '\n' {
		n += 2
	}
	return n
}

// ValidMethod reports whether m is a method the gateway accepts: as
// nginx does, upper-case letters, '-' and '_' only. The method is a
// case-sensitive token (RFC 9110 §9.1); a lower-case "get" is not GET, and
// a target that compared it without regard to case would run a request the
// gateway routed as another. Both engines refuse other methods with 400.
func ValidMethod(m []byte) bool {
	for _, c := range m {
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return len(m) > 0
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// line returns the next CRLF-terminated line of b and the rest; ok is
// false when the line ends in a bare LF.
func line(b []byte) (ln, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	return b[:i-1], b[i+1:], true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseDigits parses a Content-Length value: digits only, no sign, no
// list, and small enough not to overflow.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// tokens calls fn for each element of a comma-separated header value.
func tokens(v []byte, fn func(t []byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		if t = trimOWS(t); len(t) > 0 {
			fn(t)
		}
	}
}

// parseRequest parses a complete request head (as delimited by headEnd,
// without leading empty lines) into req, whose Headers slice is reused.
func parseRequest(head []byte, req *Request) reject {
	hdrs := req.Headers[:0]
	*req = Request{Headers: hdrs, RemoteAddr: req.RemoteAddr}
	rl, rest, ok := line(head)
	if !ok {
		return reject{400, "malformed request line"}
	}
	if bytes.HasPrefix(rl, []byte("PRI * HTTP/2")) {
		return reject{505, "HTTP/2 is not supported on this listener"}
	}
	sp := bytes.IndexByte(rl, ' ')
	if sp <= 0 {
		return reject{400, "malformed request line"}
	}
	req.Method = rl[:sp]
	if !ValidMethod(req.Method) {
		return reject{400, "malformed method"}
	}
	rl = rl[sp+1:]
	sp = bytes.IndexByte(rl, ' ')
	if sp <= 0 {
		return reject{400, "malformed request line"}
	}
	req.URI = rl[:sp]
	for _, c := range req.URI {
		if c <= ' ' || c == 0x7f {
			return reject{400, "malformed request target"}
		}
	}
	// A fragment is the client's own business (RFC 9110 §4.2.4): it is
	// dropped here, so that the target never sees it, escaped or not.
	if i := bytes.IndexByte(req.URI, '#'); i >= 0 {
		if req.URI = req.URI[:i]; len(req.URI) == 0 {
			return reject{400, "malformed request target"}
		}
	}
	switch v := rl[sp+1:]; {
	case string(v) == "HTTP/1.1":
		req.Minor = 1
	case string(v) == "HTTP/1.0":
		req.Minor = 0
	case len(v) == 8 && bytes.HasPrefix(v, []byte("HTTP/")) && v[6] == '.':
		return reject{505, "HTTP version not supported"}
	default:
		return reject{400, "malformed HTTP version"}
	}
	if string(req.Method) == "CONNECT" {
		return reject{501, "CONNECT is not supported"}
	}
	var authority []byte
	switch target := req.URI; {
	case target[0] == '/':
		req.Path = target
	case string(target) == "*":
		req.Path = target
	default:
		// absolute-form: scheme "://" authority [path]
		i := bytes.Index(target, []byte("://"))
		if i <= 0 || !validScheme(target[:i]) {
			return reject{400, "malformed request target"}
		}
		rest := target[i+3:]
		j := bytes.IndexAny(rest, "/?")
		if j < 0 {
			j = len(rest)
		}
		authority = rest[:j]
		req.Path = rest[j:]
		// validHost refuses '@' too: userinfo is an error here (RFC 9110
		// §4.2.4), and a hop that kept it in the host would route
		// elsewhere than a hop that dropped it. So does a percent-escape,
		// which some hops decode in a target's host and others do not.
		if len(authority) == 0 || !validHost(authority) || bytes.IndexByte(authority, '%') >= 0 {
			return reject{400, "malformed request target"}
		}
	}
	if q := bytes.IndexByte(req.Path, '?'); q >= 0 {
		req.Query = req.Path[q+1:]
		req.Path = req.Path[:q]
	}

	var (
		haveCL, chunked, te bool
		hosts               int
		connClose, connKA   bool
		connUpgrade, wsUp   bool
	)
	for len(rest) > 0 {
		var ln []byte
		if ln, rest, ok = line(rest); !ok {
			return reject{400, "malformed header line"}
		}
		if len(ln) == 0 {
			break
		}
		if ln[0] == ' ' || ln[0] == '\t' {
			return reject{400, "obsolete line folding is not allowed"}
		}
		colon := bytes.IndexByte(ln, ':')
		if colon <= 0 {
			return reject{400, "malformed header line"}
		}
		name := ln[:colon]
		if !validName(name) {
			return reject{400, "malformed header name"}
		}
		value := trimOWS(ln[colon+1:])
		if !validValue(value) {
			return reject{400, "malformed header value"}
		}
		req.Headers = append(req.Headers, Header{Name: name, Value: value})
		switch {
		case equalFold(name, "Content-Length"):
			n, ok := parseDigits(value)
			if !ok || haveCL && n != req.ContentLength {
				return reject{400, "invalid Content-Length"}
			}
			haveCL, req.ContentLength = true, n
		case equalFold(name, "Transfer-Encoding"):
			// Only the exact value: the body goes on with this header,
			// and a target that did not take "chunked," as chunked
			// would read the body as the next request.
			if te || !equalFold(value, "chunked") {
				return reject{501, "unsupported transfer coding"}
			}
			te, chunked = true, true
		case equalFold(name, "Host"):
			if !validHost(value) {
				return reject{400, "malformed Host header"}
			}
			hosts++
			req.Host = value
		case equalFold(name, "Connection"):
			tokens(value, func(t []byte) {
				switch {
				case equalFold(t, "close"):
					connClose = true
				case equalFold(t, "keep-alive"):
					connKA = true
				case equalFold(t, "upgrade"):
					connUpgrade = true
				}
			})
		case equalFold(name, "Upgrade"):
			tokens(value, func(t []byte) {
				if equalFold(t, "websocket") {
					wsUp = true
				}
			})
		case equalFold(name, "Expect"):
			req.Continue = req.Minor == 1 && equalFold(value, "100-continue")
		}
	}
	if te && haveCL {
		return reject{400, "both Content-Length and Transfer-Encoding"}
	}
	if te && req.Minor == 0 {
		// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has
		// faulty framing; a hop that read it differently could be
		// smuggled a second request.
		return reject{400, "Transfer-Encoding in an HTTP/1.0 request"}
	}
	if chunked {
		req.ContentLength = -1
	}
	if hosts > 1 || hosts == 0 && req.Minor == 1 {
		return reject{400, "exactly one Host header is required"}
	}
	if authority != nil {
		req.Host = authority
	}
	req.Close = connClose || req.Minor == 0 && !connKA
	req.Upgrade = connUpgrade && wsUp
	return reject{}
}

func validName(b []byte) bool {
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// validValue reports whether b has no control bytes but HT.
func validValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether a Host value or a target's authority has only
// the characters of RFC 3986's host and port: the gateway routes on it and
// forwards it, and what a target makes of anything else is not its to
// guess.
func validHost(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte("!$%&'()*+,-.:;=[]_~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validScheme reports whether b is a URI scheme (RFC 3986 §3.1).
func validScheme(b []byte) bool {
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// respHead is what the engine needs from a response head.
type respHead struct {
	status    int
	minor     int
	close     bool // Connection: close
	cl        int64
	haveCL    bool
	te        bool // any Transfer-Encoding
	chunked   bool // chunked is the final coding
	dechunk   bool // Transfer-Encoding: chunked was left out for HTTP/1.0
	badLength bool
}

// hopByHop reports whether a response header is dropped on the way to the
// client. Transfer-Encoding stays: chunked bodies are forwarded verbatim.
func hopByHop(name []byte) bool {
	return equalFold(name, "Connection") || equalFold(name, "Keep-Alive") ||
		equalFold(name, "Proxy-Connection") || equalFold(name, "TE") ||
		equalFold(name, "Trailer")
}

// parseResponse parses a complete response head and appends to out the
// head for the client, without hop-by-hop headers and without the final
// empty line. Upstreams are allowed bare LFs; out always uses CRLF. With
// http10 set, a Transfer-Encoding that is just "chunked" is left out too:
// the body will reach the HTTP/1.0 client without its chunked framing.
func parseResponse(head []byte, rh *respHead, out []byte, http10 bool, ex *Exchange) ([]byte, bool) {
	*rh = respHead{}
	i := bytes.IndexByte(head, '\n')
	if i < 0 {
		return out, false
	}
	sl := bytes.TrimSuffix(head[:i], []byte("\r"))
	rest := head[i+1:]
	if len(sl) < 12 || !bytes.HasPrefix(sl, []byte("HTTP/1.")) || sl[8] != ' ' {
		return out, false
	}
	switch sl[7] {
	case '0':
		rh.minor = 0
	case '1':
		rh.minor = 1
	default:
		return out, false
	}
	for _, c := range sl[9:12] {
		if c < '0' || c > '9' {
			return out, false
		}
		rh.status = rh.status*10 + int(c-'0')
	}
	if rh.status < 100 || len(sl) > 12 && sl[12] != ' ' || !validValue(sl) {
		return out, false
	}
	out = append(out, "HTTP/1.1"...)
	out = append(out, sl[8:]...)
	out = append(out, "\r\n"...)
	f := ex.Filter
	if rh.status < 200 {
		f = nil
	}
	if f != nil {
		f.ResponseStatus(ex, rh.status)
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return out, false
		}
		ln := bytes.TrimSuffix(rest[:i], []byte("\r"))
		rest = rest[i+1:]
		if len(ln) == 0 {
			break
		}
		colon := bytes.IndexByte(ln, ':')
		if colon <= 0 || ln[0] == ' ' || ln[0] == '\t' {
			return out, false
		}
		name, value := ln[:colon], trimOWS(ln[colon+1:])
		// The head goes to the client as it came, but for its line ends: a
		// CR or another control byte in it would let the client find
		// other lines, and so another framing, than the engine did.
		if !validName(name) || !validValue(value) {
			return out, false
		}
		switch {
		case equalFold(name, "Content-Length"):
			n, ok := parseDigits(value)
			if !ok || rh.haveCL && n != rh.cl {
				rh.badLength = true
			}
			rh.haveCL, rh.cl = true, n
		case equalFold(name, "Transfer-Encoding"):
			rh.te = true
			rh.chunked = false
			tokens(value, func(t []byte) { rh.chunked = equalFold(t, "chunked") })
			if http10 && equalFold(value, "chunked") {
				rh.dechunk = true
				continue
			}
		case equalFold(name, "Connection"):
			tokens(value, func(t []byte) {
				if equalFold(t, "close") {
					rh.close = true
				}
			})
		}
		if hopByHop(name) {
			continue
		}
		if f != nil && !f.KeepHeader(ex, name, value) {
			continue
		}
		out = append(out, ln...)
		out = append(out, "\r\n"...)
	}
	return out, true
}

// Body framing kinds.
const (
	bodyNone    = iota // no body, or the body has been seen in full
	bodyFixed          // Content-Length
	bodyChunked        // chunked, forwarded verbatim
	bodyClose          // until the sender closes
)

// Chunked decoder states.
const (
	ckSize = iota
	ckSizeWS
	ckExt
	ckSizeLF
	ckData
	ckDataCR
	ckDataLF
	ckTrailerStart
	ckTrailer
	ckTrailerLF
	ckFinalLF
)

// body tracks where a message body ends while its bytes are forwarded
// unchanged. For chunked bodies it runs the chunked syntax only to find
// the last chunk and the trailer section.
type body struct {
	kind   uint8
	state  uint8
	digits uint8
	remain int64 // bytes left: of the body (fixed) or of the chunk (chunked)
}

func (b *body) init(kind uint8, n int64) {
	*b = body{kind: kind, remain: n}
	if kind == bodyFixed && n == 0 {
		b.kind = bodyNone
	}
}

func (b *body) done() bool { return b.kind == bodyNone }

// scan returns how many bytes at the start of p belong to the body; the
// body is complete when done() reports so afterwards.
func (b *body) scan(p []byte) (int, bool) {
	switch b.kind {
	case bodyNone:
		return 0, true
	case bodyClose:
		return len(p), true
	case bodyFixed:
		n := int64(len(p))
		if n > b.remain {
			n = b.remain
		}
		if b.remain -= n; b.remain == 0 {
			b.kind = bodyNone
		}
		return int(n), true
	}
	i := 0
	for i < len(p) {
		c := p[i]
		switch b.state {
		case ckSize:
			v := unhex(c)
			switch {
			case v >= 0:
				if b.digits++; b.digits > 15 {
					return i, false
				}
				b.remain = b.remain<<4 | int64(v)
			case b.digits == 0:
				return i, false
			case c == ';':
				b.state = ckExt
			case c == ' ' || c == '\t':
				b.state = ckSizeWS
			case c == '\r':
				b.state = ckSizeLF
			default:
				return i, false
			}
		case ckSizeWS:
			// Whitespace after the size may only lead to an extension
			// (RFC 9112 §7.1.1, BWS): "3 4" is not a size.
			switch c {
			case ' ', '\t':
			case ';':
				b.state = ckExt
			case '\r':
				b.state = ckSizeLF
			default:
				return i, false
			}
		case ckExt:
			if c == '\r' {
				b.state = ckSizeLF
			} else if c == '\n' {
				return i, false
			}
		case ckSizeLF:
			if c != '\n' {
				return i, false
			}
			if b.remain == 0 {
				b.state = ckTrailerStart
			} else {
				b.state = ckData
			}
		case ckData:
			n := int64(len(p) - i)
			if n > b.remain {
				n = b.remain
			}
			i += int(n)
			if b.remain -= n; b.remain == 0 {
				b.state = ckDataCR
			}
			continue
		case ckDataCR:
			if c != '\r' {
				return i, false
			}
			b.state = ckDataLF
		case ckDataLF:
			if c != '\n' {
				return i, false
			}
			b.state, b.digits = ckSize, 0
		case ckTrailerStart:
			switch c {
			case '\r':
				b.state = ckFinalLF
			case '\n':
				// A bare LF here ends the body for some readers and starts
				// a trailer line for others.
				return i, false
			default:
				b.state = ckTrailer
			}
		case ckTrailer:
			if c == '\r' {
				b.state = ckTrailerLF
			} else if c == '\n' {
				return i, false
			}
		case ckTrailerLF:
			if c != '\n' {
				return i, false
			}
			b.state = ckTrailerStart
		case ckFinalLF:
			if c != '\n' {
				return i, false
			}
			b.kind = bodyNone
			return i + 1, true
		}
		i++
	}
	return i, true
}

// dechunk is scan for a chunked body that is forwarded without its
// framing: it moves the chunks' data to the front of p. It returns how
// many bytes of p it consumed and how many data bytes are now at its
// front.
func (b *body) dechunk(p []byte) (consumed, data int, ok bool) {
	for consumed < len(p) && b.kind == bodyChunked {
		if b.state == ckData {
			n := min(int64(len(p)-consumed), b.remain)
			copy(p[data:], p[consumed:consumed+int(n)])
			data += int(n)
			consumed += int(n)
			if b.remain -= n; b.remain == 0 {
				b.state = ckDataCR
			}
			continue
		}
		// Framing is a few bytes per chunk: one at a time is fine.
		if _, ok := b.scan(p[consumed : consumed+1]); !ok {
			return consumed, data, false
		}
		consumed++
	}
	return consumed, data, true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
