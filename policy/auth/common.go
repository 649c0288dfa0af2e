package auth

import (
	"net/http"

	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// credentialAnonymous is the Context.Credential of a request admitted as
// the anonymous consumer, so that logs tell it from a real identification.
const credentialAnonymous = "anonymous"

// consumersOf is env's consumer index; a build without one knows no
// credentials, and every request is refused rather than the gateway
// failing on a nil index.
func consumersOf(env *policy.Env) *policy.Consumers {
	if env.Consumers == nil {
		return policy.NewConsumers()
	}
	return env.Consumers
}

// readAnonymous reads the optional `anonymous` consumer name from config
// through r, which must name a consumer of the configuration.
func readAnonymous(r *policy.Reader, config map[string]any, cs *policy.Consumers) *policy.Consumer {
	name := r.String("anonymous", "")
	if _, isStr := config["anonymous"].(string); !isStr {
		// Missing, or not a string, which r reported.
		return nil
	}
	c := cs.Named(name)
	if c == nil {
		r.Failf("anonymous", "unknown consumer %q", name)
	}
	return c
}

// admitAnonymous lets a request that presented no credential of this
// policy through as anon, when the policy has one. A consumer identified
// by an earlier authentication policy is kept, so that several
// authentication policies with `anonymous` accept any one of their
// credentials.
func admitAnonymous(c *policy.Context, anon *policy.Consumer) bool {
	if anon == nil {
		return false
	}
	if c.Consumer == nil {
		c.Identify(anon, credentialAnonymous)
	}
	return true
}

// refuse answers 401 with the policy's challenge. Messages say what was
// wrong, never what the client sent.
func refuse(c *policy.Context, challenge, message string) bool {
	c.SetResponseHeaderString("WWW-Authenticate", challenge)
	c.Reject(http.StatusUnauthorized, "unauthorized", message)
	return false
}

// hasPrefixFold reports whether b starts with prefix, ASCII case ignored.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && httpascii.EqualFold(b[:len(prefix)], prefix)
}

// trimSpace removes leading and trailing spaces and tabs.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
