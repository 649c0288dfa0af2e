package external

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/external/pluginpb"
)

// Var is the Context variable that says what the policy decided:
// "continue", "modify", "reject", or "failed" when the plugin could not
// answer (the request then went on or not, as failure_mode says).
const Var = "external"

// errNotStarted is the error of a policy built for validation, which has
// no process.
var errNotStarted = errors.New("the policy was built without resources: no plugin runs")

// external is one configured external policy.
type external struct {
	s       *settings
	proc    *process
	metrics policy.Metrics
}

// New builds an external policy. On the gateway (env.Resources set) it
// shares the plugin process of every policy with the same binary and
// configuration, starting it if none runs.
func New(config map[string]any, env *policy.Env) (policy.Policy, error) {
	s, err := parse(config, env)
	if err != nil {
		return nil, err
	}
	p := &external{s: s, metrics: env.Metrics}
	if env.Resources == nil {
		return p, nil
	}
	log := env.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("external").With("plugin", s.plugin)
	key := "external\x00" + s.path + "\x00" + s.binary + "\x00" + string(s.config)
	res, err := env.Resources.Get(key, func() (io.Closer, error) {
		return newProcess(s.plugin, s.path, log), nil
	})
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", s.plugin, err)
	}
	proc, ok := res.(*process)
	if !ok {
		return nil, fmt.Errorf("plugin %s: its resource key holds a %T", s.plugin, res)
	}
	p.proc = proc
	return p, nil
}

// Run asks the plugin about the request and applies its verdict.
func (p *external) Run(c *policy.Context) bool {
	req, ok := p.request(c)
	if !ok {
		c.Reject(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("the request body is larger than the %d bytes this route's policy can check", p.s.maxBody))
		c.SetVar(Var, []byte("reject"))
		return false
	}
	if p.proc == nil {
		return p.fail(c, reasonError, errNotStarted)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.s.timeout)
	v, reason, err := p.proc.check(ctx, req)
	cancel()
	if err != nil {
		return p.fail(c, reason, err)
	}
	if err := p.apply(c, v); err != nil {
		return p.fail(c, reasonError, err)
	}
	return v.Action != pluginpb.Action_REJECT
}

// request is what the plugin is sent; ok is false when the body is
// wanted but too large. Byte fields alias the engine's buffers, which
// outlive the call: Run waits for it.
func (p *external) request(c *policy.Context) (req *pluginpb.CheckRequest, ok bool) {
	r := c.Request
	req = &pluginpb.CheckRequest{
		Method:        r.Method(),
		Path:          r.Path(),
		Query:         r.Query(),
		Host:          r.Host(),
		Tls:           r.TLS(),
		Consumer:      c.ConsumerName(),
		Service:       c.Service,
		Route:         c.Route,
		RequestId:     c.RequestID,
		ContentLength: r.ContentLength(),
		Config:        p.s.config,
	}
	if a := r.RemoteAddr(); a.IsValid() {
		req.ClientIp = a.Unmap().String()
	}
	if p.s.headers == nil || len(p.s.headers) > 0 {
		r.VisitHeaders(func(name, value []byte) {
			if p.s.wants(name) {
				req.Headers = append(req.Headers, &pluginpb.Header{Name: name, Value: value})
			}
		})
	}
	if p.s.maxBody > 0 {
		if r.ContentLength() > int64(p.s.maxBody) {
			return nil, false
		}
		if body, inMemory := r.Body(); inMemory {
			if len(body) > p.s.maxBody {
				return nil, false
			}
			req.Body, req.BodyIncluded = body, true
		}
	}
	return req, true
}

// apply carries out a verdict. A verdict with a header the gateway cannot
// apply is an error, and nothing of it is applied.
func (p *external) apply(c *policy.Context, v *pluginpb.Verdict) error {
	switch v.Action {
	case pluginpb.Action_CONTINUE:
		c.SetVar(Var, []byte("continue"))
		return nil
	case pluginpb.Action_MODIFY, pluginpb.Action_REJECT:
	default:
		return fmt.Errorf("plugin %s answered an unknown action %d", p.s.plugin, v.Action)
	}
	if err := checkHeaders("set_response_headers", v.SetResponseHeaders); err != nil {
		return err
	}
	if v.Action == pluginpb.Action_REJECT {
		status := int(v.Status)
		switch {
		case status == 0:
			status = http.StatusForbidden
		case status < 400 || status > 599:
			return fmt.Errorf("plugin %s rejected with status %d, not 400-599", p.s.plugin, v.Status)
		}
		msg := v.Message
		if msg == "" {
			msg = "the request was rejected by policy"
		}
		setHeaders(v.SetResponseHeaders, c.SetResponseHeader)
		c.Reject(status, "rejected_by_policy", msg)
		c.SetVar(Var, []byte("reject"))
		return nil
	}
	if err := checkHeaders("set_request_headers", v.SetRequestHeaders); err != nil {
		return err
	}
	for i, name := range v.RemoveRequestHeaders {
		if why := checkName(name); why != "" {
			return fmt.Errorf("plugin verdict: remove_request_headers[%d] %q %s", i, name, why)
		}
	}
	setHeaders(v.SetRequestHeaders, c.SetRequestHeader)
	for _, name := range v.RemoveRequestHeaders {
		c.DelRequestHeader(string(name))
	}
	setHeaders(v.SetResponseHeaders, c.SetResponseHeader)
	c.SetVar(Var, []byte("modify"))
	return nil
}

func checkHeaders(field string, hs []*pluginpb.Header) error {
	for i, h := range hs {
		if why := checkName(h.Name); why != "" {
			return fmt.Errorf("plugin verdict: %s[%d] name %q %s", field, i, h.Name, why)
		}
		if !validValue(h.Value) {
			return fmt.Errorf("plugin verdict: %s[%d] value of %s holds a line break or NUL", field, i, h.Name)
		}
	}
	return nil
}

func setHeaders(hs []*pluginpb.Header, set func(name string, value []byte)) {
	for _, h := range hs {
		set(string(h.Name), h.Value)
	}
}

// fail counts and logs a call that got no verdict, and lets the request
// go on or not as failure_mode says.
func (p *external) fail(c *policy.Context, reason string, err error) bool {
	if p.metrics != nil {
		p.metrics.ExternalFailed(p.s.plugin, reason)
	}
	if p.proc != nil {
		p.proc.warn(reason, err)
	}
	c.SetVar(Var, []byte("failed"))
	if p.s.failOpen {
		return true
	}
	c.Reject(http.StatusServiceUnavailable, "policy_unavailable", "the request's policy could not be checked")
	return false
}
