package transform

import (
	"net/http"

	"github.com/gatehouse/gatehouse/policy"
)

// requestSizeLimit refuses request bodies longer than a limit.
type requestSizeLimit struct {
	max int64
}

func newRequestSizeLimit(config map[string]any, _ *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	r.Required("max_bytes")
	max := int64(r.Int("max_bytes", 0, 1, 1<<40))
	r.Done()
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &requestSizeLimit{max: max}, nil
}

func (p *requestSizeLimit) Run(c *policy.Context) bool {
	n := c.Request.ContentLength()
	if n < 0 {
		body, ok := c.Request.Body()
		if !ok {
			c.LimitBody(p.max)
			return true
		}
		n = int64(len(body))
	}
	if n > p.max {
		c.Reject(http.StatusRequestEntityTooLarge, "request_too_large", "the request body is larger than the route allows")
		return false
	}
	return true
}
