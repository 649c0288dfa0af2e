package transform

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/policy"
)

// VarRequestID is the Context var holding the id request-id chose;
// Context.RequestID points at it.
const VarRequestID = "request-id"

// maxClientID is the longest id a client may send and have kept.
const maxClientID = 128

// requestID chooses the request's id: the client's, or a new one, under a
// header of the configuration's choosing.
type requestID struct {
	header string
	// gatewayHeader: the header is X-Request-Id, which the engines write
	// from Context.RequestID on both sides themselves.
	gatewayHeader bool
	uuid          bool
	override      bool
	response      bool
	// prefix makes counter ids unique across gateways and deployments:
	// 16 random hex digits and "-", like the gateway's own ids.
	prefix  [17]byte
	counter atomic.Uint64
}

func newRequestID(config map[string]any, _ *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &requestID{header: "X-Request-Id"}
	if h, ok := stringField(r, &errs, "header"); ok {
		if why := checkHeaderName(h, true); why != "" && !strings.EqualFold(h, p.header) {
			r.Fail("header", why)
		}
		p.header = h
	}
	p.gatewayHeader = strings.EqualFold(p.header, "X-Request-Id")
	p.uuid = r.OneOf("generate", "counter", "counter", "uuid") == "uuid"
	p.override = r.Bool("override_client", false)
	p.response = r.Bool("response", true)
	if !p.response && p.gatewayHeader {
		r.Fail("response", "the gateway always returns X-Request-Id: false only applies to another header")
	}
	r.Done()
	if err := errs.Err(); err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	hex.Encode(p.prefix[:16], b[:])
	p.prefix[16] = '-'
	return p, nil
}

// Run keeps a plausible id the client sent, unless told to override it,
// and otherwise makes one. The id becomes Context.RequestID, which the
// engines send upstream and back as X-Request-Id; another header carries
// it too.
func (p *requestID) Run(c *policy.Context) bool {
	id := c.Request.Header(p.header)
	kept := len(id) > 0 && !p.override && plausibleID(id)
	if !kept {
		id = p.generate(c.Scratch()[:0])
	}
	c.SetVar(VarRequestID, id)
	c.RequestID, _ = c.Var(VarRequestID)
	if p.gatewayHeader {
		return true
	}
	if !kept {
		c.SetRequestHeader(p.header, c.RequestID)
	}
	if p.response {
		c.SetResponseHeader(p.header, c.RequestID)
	}
	return true
}

// plausibleID reports whether a client's id is short visible ASCII: any
// other is replaced rather than passed to logs and upstreams.
func plausibleID(id []byte) bool {
	if len(id) > maxClientID {
		return false
	}
	for _, b := range id {
		if b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}

// generate appends a new id to b.
func (p *requestID) generate(b []byte) []byte {
	if !p.uuid {
		return strconv.AppendUint(append(b, p.prefix[:]...), p.counter.Add(1), 16)
	}
	var random [16]byte
	_, _ = rand.Read(random[:])       // never fails, and keeps random on the stack
	random[6] = random[6]&0x0f | 0x40 // version 4
	random[8] = random[8]&0x3f | 0x80 // RFC 9562 variant
	var text [36]byte
	hex.Encode(text[0:8], random[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], random[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], random[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], random[8:10])
	text[23] = '-'
	hex.Encode(text[24:36], random[10:16])
	return append(b, text[:]...)
}
