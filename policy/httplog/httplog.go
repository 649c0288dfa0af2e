package httplog

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/fieldpath"
	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

type httpLog struct {
	// sender is nil in a validation build, which starts nothing.
	sender *sender
	// headers are the request headers logged, lower case.
	headers []string
	// percent of the exchanges are logged (sample_percent, 1 to 100);
	// seen counts the exchanges, so that exactly percent of every hundred
	// are, spread evenly.
	percent int
	seen    atomic.Uint64
}

func newHTTPLog(config map[string]any, env *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	cfg := readConfig(r)
	p := &httpLog{percent: r.Int(deploy.HTTPLogSampleKey, 100, 1, 100)}
	for i, name := range r.Strings("include_request_headers") {
		if !httpascii.IsToken(name) {
			errs.Add(fieldpath.Index("include_request_headers", i), "must be an HTTP header name")
			continue
		}
		p.headers = append(p.headers, strings.ToLower(name))
	}
	r.Done()
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if env.Resources == nil {
		return p, nil
	}
	logger := env.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	res, err := env.Resources.Get(cfg.key(), func() (io.Closer, error) {
		s := newSender(cfg, env.Metrics, logger)
		s.start()
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("http-log sender: %w", err)
	}
	s, ok := res.(*sender)
	if !ok {
		return nil, fmt.Errorf("http-log sender: resource is a %T", res)
	}
	p.sender = s
	return p, nil
}

// Run has nothing to do: the policy acts once the exchange is over.
func (p *httpLog) Run(*policy.Context) bool { return true }

// Log encodes the entry into a pooled buffer, so that the queue's lock is
// held only to copy it.
func (p *httpLog) Log(c *policy.Context, o *policy.Outcome) {
	if p.sender == nil || !p.sampled() {
		return
	}
	bp := p.sender.lines.Get().(*[]byte)
	line := p.appendEntry((*bp)[:0], c, o)
	p.sender.enqueue(line)
	*bp = line
	p.sender.lines.Put(bp)
}

// sampled says whether the exchange is logged: the n-th one is when
// n×percent/100 passes a whole number, which logs percent of every
// hundred exchanges, evenly spread.
func (p *httpLog) sampled() bool {
	if p.percent >= 100 {
		return true
	}
	n := p.seen.Add(1)
	return n*uint64(p.percent)/100 != (n-1)*uint64(p.percent)/100
}

// appendEntry appends c's entry as one JSON line.
func (p *httpLog) appendEntry(b []byte, c *policy.Context, o *policy.Outcome) []byte {
	req := c.Request
	b = append(b, `{"time":"`...)
	b = c.Now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendString(b, c.RequestID)
	b = append(b, `,"method":`...)
	b = appendString(b, req.Method())
	b = append(b, `,"host":`...)
	b = appendString(b, req.Host())
	b = append(b, `,"path":`...)
	b = appendString(b, req.Path())
	if q := req.Query(); len(q) > 0 {
		b = append(b, `,"query":`...)
		b = appendString(b, q)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(o.Status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, o.Duration)
	b = append(b, `,"upstream_ms":`...)
	b = appendMillis(b, o.UpstreamTime)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, o.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, o.BytesOut, 10)
	b = append(b, `,"client_ip":"`...)
	if ip := req.RemoteAddr(); ip.IsValid() {
		b = ip.Unmap().AppendTo(b)
	}
	b = append(b, `","service":`...)
	b = appendString(b, c.Service)
	b = append(b, `,"route":`...)
	b = appendString(b, c.Route)
	b = append(b, `,"consumer":`...)
	b = appendString(b, c.ConsumerName())
	if len(p.headers) > 0 {
		b = append(b, `,"request_headers":{`...)
		first := true
		for _, name := range p.headers {
			v := c.RequestHeader(name)
			if v == nil {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, name)
			b = append(b, ':')
			b = appendString(b, v)
		}
		b = append(b, '}')
	}
	return append(b, "}\n"...)
}

func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// appendString appends s as a JSON string. Bytes that are not UTF-8
// become U+FFFD, as encoding/json does, so that a line always parses.
func appendString[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c >= 0x20:
				b = append(b, c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
