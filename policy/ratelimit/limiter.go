package ratelimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/policy"
)

// limiter is a rate-limit policy: its limits, on counters it may share
// with other policies of the same configuration.
type limiter struct {
	st      *store
	limits  []limit
	by      string
	header  string
	headers bool
}

func (l *limiter) Run(c *policy.Context) bool {
	var v verdict
	l.count(c, &v)
	var buf [20]byte
	if l.headers {
		c.SetResponseHeaderString("X-RateLimit-Limit", v.limit.text)
		c.SetResponseHeader("X-RateLimit-Remaining", strconv.AppendInt(buf[:0], v.remaining, 10))
		c.SetResponseHeader("X-RateLimit-Reset", strconv.AppendInt(buf[:0], seconds(v.reset), 10))
	}
	if v.allowed {
		return true
	}
	c.SetResponseHeader("Retry-After", strconv.AppendInt(buf[:0], seconds(v.retry), 10))
	c.Reject(http.StatusTooManyRequests, "rate_limited", "rate limit exceeded")
	return false
}

// count decides on the request by its key, and counts it if allowed.
func (l *limiter) count(c *policy.Context, v *verdict) {
	now := c.Now.UnixNano()
	switch l.by {
	case byConsumer:
		if c.Consumer != nil {
			take(l.st, kindNamed, c.Consumer.Name, now, l.limits, v)
			return
		}
	case byHeader:
		if h := c.RequestHeader(l.header); len(h) > 0 {
			take(l.st, kindNamed, h, now, l.limits, v)
			return
		}
	}
	// By address, or an anonymous request, or one without the header.
	addr := c.Request.RemoteAddr().As16()
	take(l.st, kindIP, addr[:], now, l.limits, v)
}

// seconds rounds up, so that a client waiting that long is not early.
func seconds(ns int64) int64 {
	return max((ns+int64(time.Second)-1)/int64(time.Second), 1)
}
