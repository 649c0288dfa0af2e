package auth

import (
	"bytes"
	"strings"

	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// keyChallenge is key-auth's WWW-Authenticate: API keys have no
// registered scheme, so it names one the way most gateways do.
const keyChallenge = `Key realm="gatehouse"`

// maxDecodedKey is the room for a percent-decoded query key on the stack;
// a longer one is decoded on the heap.
const maxDecodedKey = 256

type keyAuth struct {
	consumers *policy.Consumers
	header    string
	query     string
	hide      bool
	anonymous *policy.Consumer
}

func newKeyAuth(config map[string]any, env *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &keyAuth{consumers: consumersOf(env)}
	p.header = r.String("header", "X-API-Key")
	if !httpascii.IsToken(p.header) {
		r.Fail("header", "must be an HTTP header name")
	}
	p.query = r.String("query", "")
	if r.Has("query") && (p.query == "" || strings.ContainsAny(p.query, "&=#%+ ")) {
		r.Fail("query", `must be a query parameter name, without "&", "=", "#", "%", "+" or spaces`)
	}
	p.hide = r.Bool("hide_credentials", false)
	p.anonymous = readAnonymous(r, config, p.consumers)
	r.Done()
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *keyAuth) Run(c *policy.Context) bool {
	key := c.RequestHeader(p.header)
	fromQuery := false
	if len(key) > 0 {
		if p.hide {
			c.DelRequestHeader(p.header)
		}
	} else if p.query != "" {
		key, fromQuery = queryParam(c.Request.Query(), p.query), true
	}
	if len(key) == 0 {
		if admitAnonymous(c, p.anonymous) {
			return true
		}
		return refuse(c, keyChallenge, "missing API key")
	}
	if fromQuery && bytes.ContainsAny(key, "%+") {
		var buf [maxDecodedKey]byte
		var ok bool
		if key, ok = unescapeQuery(buf[:0], key); !ok {
			return refuse(c, keyChallenge, "invalid API key")
		}
	}
	consumer := p.consumers.ByKey(key)
	if consumer == nil {
		return refuse(c, keyChallenge, "invalid API key")
	}
	c.Identify(consumer, "key")
	if fromQuery && p.hide {
		q, _ := c.Query()
		c.SetQuery(withoutParam(c.Scratch()[:0], q, p.query))
	}
	return true
}

// withoutParam appends the raw query q less every parameter called name.
func withoutParam(dst, q []byte, name string) []byte {
	for len(q) > 0 {
		var pair []byte
		pair, q, _ = bytes.Cut(q, []byte("&"))
		k, _, _ := bytes.Cut(pair, []byte("="))
		if string(k) == name || len(pair) == 0 {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, pair...)
	}
	return dst
}

// queryParam returns the raw value of the first parameter called name in
// the raw query q, nil when there is none. Names are compared as sent:
// a percent-encoded name does not match.
func queryParam(q []byte, name string) []byte {
	for len(q) > 0 {
		var pair []byte
		pair, q, _ = bytes.Cut(q, []byte("&"))
		k, v, _ := bytes.Cut(pair, []byte("="))
		if string(k) == name {
			return v
		}
	}
	return nil
}

// unescapeQuery appends the form-decoding of v ("+" is a space, "%XX" a
// byte) to dst; ok is false for a malformed escape.
func unescapeQuery(dst, v []byte) ([]byte, bool) {
	for i := 0; i < len(v); i++ {
		switch b := v[i]; b {
		case '+':
			dst = append(dst, ' ')
		case '%':
			if i+2 >= len(v) {
				return nil, false
			}
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if !ok1 || !ok2 {
				return nil, false
			}
			dst = append(dst, hi<<4|lo)
			i += 2
		default:
			dst = append(dst, b)
		}
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
