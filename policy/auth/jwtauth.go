package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/fieldpath"
	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// The challenges follow RFC 6750: a request without a token is told the
// scheme; one with a bad token is also told it was invalid.
const (
	bearerChallenge = `Bearer realm="gatehouse"`
	bearerInvalid   = `Bearer realm="gatehouse", error="invalid_token"`
)

type jwtAuth struct {
	keys map[string][]jwtKey // by subject
	algs algorithm
	// header holds the token; for Authorization, only after "Bearer ".
	header      string
	bearerOnly  bool
	query       string
	cookie      string
	subject     string
	skew        time.Duration
	claimHeader []claimHeader
	required    []string
}

// claimHeader copies a claim into a request header for the upstream.
type claimHeader struct {
	claim, header string
}

func newJWTAuth(config map[string]any, env *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &jwtAuth{keys: map[string][]jwtKey{}}

	p.header = r.String("header", "Authorization")
	if !httpascii.IsToken(p.header) {
		r.Fail("header", "must be an HTTP header name")
	}
	p.bearerOnly = strings.EqualFold(p.header, "Authorization")
	p.query = r.String("query", "")
	if r.Has("query") && (p.query == "" || strings.ContainsAny(p.query, "&=#%+ ")) {
		r.Fail("query", `must be a query parameter name, without "&", "=", "#", "%", "+" or spaces`)
	}
	p.cookie = r.String("cookie", "")
	if r.Has("cookie") && !httpascii.IsToken(p.cookie) {
		r.Fail("cookie", "must be a cookie name")
	}

	names := r.Strings("algorithms")
	if r.Has("algorithms") && len(names) == 0 {
		r.Fail("algorithms", "must list at least one algorithm")
	}
	for i, name := range names {
		a, ok := algorithms[name]
		if !ok {
			errs.Add(fieldpath.Index("algorithms", i), `must be "HS256", "RS256" or "ES256"`)
		}
		p.algs |= a
	}
	if !r.Has("algorithms") {
		p.algs = algHS256 | algRS256 | algES256
	}

	p.subject = r.String("subject_claim", "sub")
	if p.subject == "" {
		r.Fail("subject_claim", "must not be empty")
	}
	p.skew = r.Duration("clock_skew", 30*time.Second, 0, 10*time.Minute)

	for claim, header := range r.StringMap("claims_to_headers") {
		if !httpascii.IsToken(header) {
			errs.Add(fieldpath.Join("claims_to_headers", claim), "must be an HTTP header name")
			continue
		}
		p.claimHeader = append(p.claimHeader, claimHeader{claim: claim, header: header})
	}
	sort.Slice(p.claimHeader, func(i, j int) bool { return p.claimHeader[i].claim < p.claimHeader[j].claim })

	for i, claim := range r.Strings("required_claims") {
		if claim == "" {
			errs.Add(fieldpath.Index("required_claims", i), "must not be empty")
			continue
		}
		p.required = append(p.required, claim)
	}
	r.Done()

	jwts := consumersOf(env).JWTs()
	subjects := make([]string, 0, len(jwts))
	for s := range jwts {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	for _, s := range subjects {
		for _, cred := range jwts[s] {
			k, err := parseJWTKey(cred)
			if err != nil {
				// The consumer's credentials are not this policy's
				// config: the error names them for the whole policy.
				errs.Addf("", "consumer %q: jwt credential of subject %q: secret is not a usable public key: %v",
					cred.Consumer.Name, s, err)
				continue
			}
			p.keys[s] = append(p.keys[s], k)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *jwtAuth) Run(c *policy.Context) bool {
	tok := p.token(c)
	if len(tok) == 0 {
		return refuse(c, bearerChallenge, "missing token")
	}
	consumer, claims, problem := p.verify(tok, c.Now)
	if problem != "" {
		return refuse(c, bearerInvalid, problem)
	}
	c.Identify(consumer, "jwt")
	c.Claims = claims
	for _, ch := range p.claimHeader {
		// A header the token does not vouch for is removed, so that a
		// client cannot send it itself.
		v, ok := claimValue(c.Scratch()[:0], claims[ch.claim])
		if !ok {
			c.DelRequestHeader(ch.header)
			continue
		}
		c.SetRequestHeader(ch.header, v)
	}
	return true
}

// token finds the token: in the header, then the query, then the cookie.
func (p *jwtAuth) token(c *policy.Context) []byte {
	if h := trimSpace(c.RequestHeader(p.header)); len(h) > 0 {
		if hasPrefixFold(h, "Bearer ") {
			return trimSpace(h[len("Bearer "):])
		}
		if !p.bearerOnly {
			return h
		}
	}
	if p.query != "" {
		if v := queryParam(c.Request.Query(), p.query); len(v) > 0 {
			return v
		}
	}
	if p.cookie != "" {
		if v := cookieValue(c.RequestHeader("Cookie"), p.cookie); len(v) > 0 {
			return v
		}
	}
	return nil
}

type jwtHeader struct {
	Alg  string   `json:"alg"`
	Crit []string `json:"crit"`
}

// verify checks tok and returns its consumer and claims, or what is wrong
// with it, for the 401 message.
func (p *jwtAuth) verify(tok []byte, now time.Time) (*policy.Consumer, map[string]any, string) {
	i, j := bytes.IndexByte(tok, '.'), bytes.LastIndexByte(tok, '.')
	if i < 0 || i == j || bytes.IndexByte(tok[i+1:j], '.') >= 0 {
		return nil, nil, "malformed token"
	}
	var hdr jwtHeader
	hb, ok := decodeSegment(tok[:i])
	if !ok || json.Unmarshal(hb, &hdr) != nil {
		return nil, nil, "malformed token"
	}
	alg := algorithms[hdr.Alg]
	if alg&p.algs == 0 {
		return nil, nil, "token algorithm not allowed"
	}
	if len(hdr.Crit) > 0 {
		// RFC 7515: extensions the verifier does not know make the
		// token invalid.
		return nil, nil, "token has unsupported critical headers"
	}
	var claims map[string]any
	pb, ok := decodeSegment(tok[i+1 : j])
	if !ok || json.Unmarshal(pb, &claims) != nil || claims == nil {
		return nil, nil, "malformed token"
	}
	sig, ok := decodeSegment(tok[j+1:])
	if !ok {
		return nil, nil, "malformed token"
	}
	sub, _ := claims[p.subject].(string)
	if sub == "" {
		return nil, nil, "token has no subject"
	}
	keys := p.keys[sub]
	if len(keys) == 0 {
		return nil, nil, "unknown token subject"
	}
	var consumer *policy.Consumer
	for k := range keys {
		if keys[k].alg == alg && keys[k].verify(tok[:j], sig) {
			consumer = keys[k].consumer
			break
		}
	}
	if consumer == nil {
		return nil, nil, "invalid token signature"
	}
	if exp, ok := claims["exp"]; ok {
		t, ok := numericDate(exp)
		if !ok {
			return nil, nil, "malformed token"
		}
		if now.After(t.Add(p.skew)) {
			return nil, nil, "token expired"
		}
	}
	if nbf, ok := claims["nbf"]; ok {
		t, ok := numericDate(nbf)
		if !ok {
			return nil, nil, "malformed token"
		}
		if now.Before(t.Add(-p.skew)) {
			return nil, nil, "token not yet valid"
		}
	}
	for _, name := range p.required {
		if claims[name] == nil {
			return nil, nil, "token lacks required claim " + strconv.Quote(name)
		}
	}
	return consumer, claims, ""
}

// decodeSegment decodes a base64url segment without padding.
func decodeSegment(seg []byte) ([]byte, bool) {
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(seg)))
	n, err := base64.RawURLEncoding.Decode(out, seg)
	return out[:n], err == nil
}

// numericDate reads a JWT NumericDate: seconds since the epoch, possibly
// with a fraction.
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// claimValue appends v as a header value to dst: strings as they are,
// numbers and booleans as JSON writes them, objects and lists as JSON.
// ok is false for a missing claim, and for one whose value could not be
// a header value (control characters), rather than forward it.
func claimValue(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case string:
		dst = append(dst, x...)
	case float64:
		dst = strconv.AppendFloat(dst, x, 'f', -1, 64)
	case bool:
		dst = strconv.AppendBool(dst, x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, false
		}
		dst = append(dst, b...)
	}
	if slices.ContainsFunc(dst, func(b byte) bool { return b < 0x20 && b != '\t' || b == 0x7f }) {
		return nil, false
	}
	return dst, true
}

// cookieValue returns the value of the cookie called name in a Cookie
// header, nil when absent.
func cookieValue(h []byte, name string) []byte {
	for len(h) > 0 {
		part := h
		if i := bytes.IndexByte(h, ';'); i >= 0 {
			part, h = h[:i], h[i+1:]
		} else {
			h = nil
		}
		part = trimSpace(part)
		k, v, ok := bytes.Cut(part, []byte{'='})
		if ok && string(k) == name {
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return nil
}
