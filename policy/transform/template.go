package transform

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/policy"
)

// variable is a value of the request a template may insert.
type variable uint8

const (
	varNone variable = iota
	varConsumer
	varRequestID
	varClientIP
	varRoute
	varService
)

var variableNames = map[string]variable{
	"consumer":   varConsumer,
	"request_id": varRequestID,
	"client_ip":  varClientIP,
	"route":      varRoute,
	"service":    varService,
}

const variablesHelp = "known: $consumer, $request_id, $client_ip, $route, $service; $$ is a literal $"

// template is a header value with $variables, parsed once so that a
// request only appends its parts.
type template struct {
	parts []part
	// literal is the whole value when it has no variable: it goes to the
	// edit as it is.
	literal []byte
}

// part is a literal (v == varNone) or a variable.
type part struct {
	lit []byte
	v   variable
}

// parseTemplate reads s: $name or ${name} insert a variable, $$ a $.
func parseTemplate(s string) (template, error) {
	var t template
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t.parts = append(t.parts, part{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			lit = append(lit, s[i])
			continue
		}
		rest := s[i+1:]
		var name string
		switch {
		case strings.HasPrefix(rest, "$"):
			lit = append(lit, '$')
			i++
			continue
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return template{}, fmt.Errorf("unclosed ${ at offset %d", i)
			}
			name = rest[1:end]
			i += end + 1
		default:
			n := 0
			for n < len(rest) && (rest[n] == '_' || 'a' <= rest[n] && rest[n] <= 'z') {
				n++
			}
			name = rest[:n]
			i += n
		}
		v, ok := variableNames[name]
		if !ok {
			return template{}, fmt.Errorf("unknown variable %q (%s)", "$"+name, variablesHelp)
		}
		flush()
		t.parts = append(t.parts, part{v: v})
	}
	flush()
	switch {
	case len(t.parts) == 0:
		t.literal = []byte{}
	case len(t.parts) == 1 && t.parts[0].v == varNone:
		t.literal = t.parts[0].lit
	}
	return t, nil
}

// value is the template's value for c's request, built in c's scratch
// space unless the template is a literal.
func (t *template) value(c *policy.Context) []byte {
	if t.literal != nil {
		return t.literal
	}
	b := c.Scratch()[:0]
	for i := range t.parts {
		p := &t.parts[i]
		switch p.v {
		case varNone:
			b = append(b, p.lit...)
		case varConsumer:
			b = append(b, c.ConsumerName()...)
		case varRequestID:
			b = append(b, c.RequestID...)
		case varClientIP:
			b = c.Request.RemoteAddr().AppendTo(b)
		case varRoute:
			b = append(b, c.Route...)
		case varService:
			b = append(b, c.Service...)
		}
	}
	return b
}
