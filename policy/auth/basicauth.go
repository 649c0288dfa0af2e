package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/gatehouse/gatehouse/policy"
)

// maxBasicEncoded bounds the base64 credentials decoded on the stack;
// longer ones are refused.
const maxBasicEncoded = 1024

// dummyDigest is compared against when the username is unknown, so that
// an unknown user costs the same time as a wrong password.
var dummyDigest = sha256.Sum256([]byte("gatehouse: no such user"))

type basicAuth struct {
	consumers *policy.Consumers
	challenge string
	hide      bool
	anonymous *policy.Consumer
}

func newBasicAuth(config map[string]any, env *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &basicAuth{consumers: consumersOf(env)}
	realm := r.String("realm", "gatehouse")
	if !validRealm(realm) {
		r.Fail("realm", `must be printable ASCII without '"' or '\'`)
	}
	p.challenge = `Basic realm="` + realm + `"`
	p.hide = r.Bool("hide_credentials", false)
	p.anonymous = readAnonymous(r, config, p.consumers)
	r.Done()
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

func validRealm(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

func (p *basicAuth) Run(c *policy.Context) bool {
	h := c.RequestHeader("Authorization")
	if !hasPrefixFold(h, "Basic ") {
		if admitAnonymous(c, p.anonymous) {
			return true
		}
		return refuse(c, p.challenge, "missing credentials")
	}
	if p.hide {
		c.DelRequestHeader("Authorization")
	}
	enc := trimSpace(h[len("Basic "):])
	if len(enc) > maxBasicEncoded {
		return refuse(c, p.challenge, "invalid credentials")
	}
	var buf [maxBasicEncoded * 3 / 4]byte
	n, err := base64.StdEncoding.Decode(buf[:], enc)
	if err != nil {
		return refuse(c, p.challenge, "invalid credentials")
	}
	user, pass, ok := bytes.Cut(buf[:n], []byte{':'})
	if !ok {
		return refuse(c, p.challenge, "invalid credentials")
	}
	cred, known := p.consumers.Basic(user)
	// Digests compare in constant time whatever the lengths, and hide
	// whether the user exists.
	want := dummyDigest
	if known {
		want = sha256.Sum256([]byte(cred.Password))
	}
	got := sha256.Sum256(pass)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 || !known {
		return refuse(c, p.challenge, "invalid credentials")
	}
	c.Identify(cred.Consumer, "basic")
	return true
}
