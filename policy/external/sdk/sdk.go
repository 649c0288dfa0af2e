package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
)

// Header is one header line.
type Header struct {
	Name, Value string
}

// Request is the client's request as it reached the gateway, before any
// policy changed it, with what the gateway knows about it.
type Request struct {
	Method string
	// Path is the normalised, unescaped path the route matched.
	Path string
	// Query is the raw query string, without '?'.
	Query string
	Host  string
	// Headers are the client's headers in order: all of them, or those
	// the policy's headers option names.
	Headers  []Header
	ClientIP string
	TLS      bool
	// Consumer is the consumer an authentication policy identified, ""
	// for an anonymous request.
	Consumer string
	Service  string
	Route    string
	// RequestID is the request's X-Request-Id when the request-id policy
	// runs on the route.
	RequestID string
	// ContentLength is the declared body length, -1 when chunked.
	ContentLength int64
	// Body is the request body when BodyIncluded: the policy's
	// body.max_bytes asks for it.
	Body         []byte
	BodyIncluded bool
	// Config is the policy's config value as JSON ("null" when it has
	// none). Configured decodes it once for all requests.
	Config json.RawMessage
}

// Header returns the first value of the named header (any case), "" when
// the request has none.
func (r *Request) Header(name string) string {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Action is what the gateway does with the request.
type Action int

const (
	// ActionContinue lets the request go on unchanged.
	ActionContinue Action = iota
	// ActionModify lets it go on with the verdict's header edits.
	ActionModify
	// ActionReject answers it with Status and Message.
	ActionReject
)

// Verdict is a Check's answer. Build one with Continue or Reject, and add
// header edits with its methods.
type Verdict struct {
	Action Action
	// Status (400-599; 0 means 403) and Message answer a rejected request
	// in the gateway's JSON error body, with code "rejected_by_policy".
	Status  int
	Message string
	// SetRequestHeaders replace headers the upstream receives, and
	// RemoveRequestHeaders remove some (ActionModify only).
	SetRequestHeaders    []Header
	RemoveRequestHeaders []string
	// SetResponseHeaders replace headers the client receives, with a
	// modified request's response or with a rejection.
	SetResponseHeaders []Header
}

// Continue lets the request go on.
func Continue() *Verdict { return &Verdict{Action: ActionContinue} }

// Reject answers the request with status and message.
func Reject(status int, message string) *Verdict {
	return &Verdict{Action: ActionReject, Status: status, Message: message}
}

// SetRequestHeader has the upstream receive the header with value; a
// continuing verdict becomes a modifying one.
func (v *Verdict) SetRequestHeader(name, value string) *Verdict {
	v.modify()
	v.SetRequestHeaders = append(v.SetRequestHeaders, Header{name, value})
	return v
}

// RemoveRequestHeader has the upstream not receive the header.
func (v *Verdict) RemoveRequestHeader(name string) *Verdict {
	v.modify()
	v.RemoveRequestHeaders = append(v.RemoveRequestHeaders, name)
	return v
}

// SetResponseHeader has the client receive the header with value, also
// with a rejection.
func (v *Verdict) SetResponseHeader(name, value string) *Verdict {
	v.modify()
	v.SetResponseHeaders = append(v.SetResponseHeaders, Header{name, value})
	return v
}

func (v *Verdict) modify() {
	if v.Action == ActionContinue {
		v.Action = ActionModify
	}
}

// Checker decides on requests. Check is called concurrently.
type Checker interface {
	Check(ctx context.Context, r *Request) (*Verdict, error)
}

// CheckerFunc is a function that is a Checker.
type CheckerFunc func(ctx context.Context, r *Request) (*Verdict, error)

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context, r *Request) (*Verdict, error) { return f(ctx, r) }

// Validator is a configuration type that checks itself once decoded.
type Validator interface {
	Validate() error
}

// Configured is a Checker whose check takes the policy's configuration
// decoded into a C. The configuration is decoded (unknown fields are
// errors) and, when *C is a Validator, validated once for every request
// that carries the same configuration; a configuration that fails makes
// every Check fail with its error.
func Configured[C any](check func(ctx context.Context, r *Request, config *C) (*Verdict, error)) Checker {
	cc := &configured[C]{check: check}
	return cc
}

type configured[C any] struct {
	check func(ctx context.Context, r *Request, config *C) (*Verdict, error)
	// last is the most recent configuration: a plugin process serves one
	// policy configuration, so one entry is all the cache needs.
	last atomic.Pointer[decoded[C]]
}

type decoded[C any] struct {
	raw []byte
	cfg *C
	err error
}

func (cc *configured[C]) Check(ctx context.Context, r *Request) (*Verdict, error) {
	d := cc.last.Load()
	if d == nil || !bytes.Equal(d.raw, r.Config) {
		d = decode[C](r.Config)
		cc.last.Store(d)
	}
	if d.err != nil {
		return nil, d.err
	}
	return cc.check(ctx, r, d.cfg)
}

func decode[C any](raw []byte) *decoded[C] {
	d := &decoded[C]{raw: bytes.Clone(raw), cfg: new(C)}
	if len(raw) > 0 && string(raw) != "null" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(d.cfg); err != nil {
			d.err = fmt.Errorf("policy config: %w", err)
			return d
		}
	}
	if v, ok := any(d.cfg).(Validator); ok {
		if err := v.Validate(); err != nil {
			d.err = fmt.Errorf("policy config: %w", err)
		}
	}
	return d
}
