package transform

import (
	"sort"

	"github.com/gatehouse/gatehouse/fieldpath"
	"github.com/gatehouse/gatehouse/policy"
)

// headerEdits is the configuration of request-headers and
// response-headers: removals, renames, replacements, additions, applied in
// that order so that a header can be cleared and then given new values.
type headerEdits struct {
	remove   []string
	rename   [][2]string
	set, add []headerValue
}

type headerValue struct {
	name  string
	value template
}

func newRequestHeaders(config map[string]any, _ *policy.Env) (policy.Policy, error) {
	return readHeaderEdits(config, false)
}

func newResponseHeaders(config map[string]any, _ *policy.Env) (policy.Policy, error) {
	p, err := readHeaderEdits(config, true)
	if err != nil {
		return nil, err
	}
	return &responseHeaders{p}, nil
}

func readHeaderEdits(config map[string]any, response bool) (*headerEdits, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &headerEdits{}
	name := func(path, n string) bool {
		if why := checkHeaderName(n, !response); why != "" {
			errs.Add(path, why)
			return false
		}
		return true
	}
	for i, n := range r.Strings("remove") {
		if name(fieldpath.Index("remove", i), n) {
			p.remove = append(p.remove, n)
		}
	}
	renames := r.StringMap("rename")
	for _, from := range sortedKeys(renames) {
		to := renames[from]
		path := fieldpath.Join("rename", from)
		if name(path, from) && name(path, to) {
			p.rename = append(p.rename, [2]string{from, to})
		}
	}
	values := func(key string) []headerValue {
		m := r.StringMap(key)
		var out []headerValue
		for _, n := range sortedKeys(m) {
			path := fieldpath.Join(key, n)
			if !name(path, n) {
				continue
			}
			if !validValue(m[n]) {
				errs.Add(path, "must not contain control characters")
				continue
			}
			t, err := parseTemplate(m[n])
			if err != nil {
				errs.Add(path, err.Error())
				continue
			}
			out = append(out, headerValue{name: n, value: t})
		}
		return out
	}
	p.set, p.add = values("set"), values("add")
	r.Done()
	if len(errs) == 0 && len(p.remove)+len(p.rename)+len(p.set)+len(p.add) == 0 {
		errs.Add("", `at least one of "remove", "rename", "set" and "add" is required`)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// sortedKeys orders a mapping's keys, so that edits apply in the same
// order on every gateway.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Run edits the request the upstream receives (request-headers).
func (p *headerEdits) Run(c *policy.Context) bool {
	for _, n := range p.remove {
		c.DelRequestHeader(n)
	}
	for _, rn := range p.rename {
		c.RenameRequestHeader(rn[0], rn[1])
	}
	for i := range p.set {
		c.SetRequestHeader(p.set[i].name, p.set[i].value.value(c))
	}
	for i := range p.add {
		c.AddRequestHeader(p.add[i].name, p.add[i].value.value(c))
	}
	return true
}

// responseHeaders edits the response the client receives, whoever gave
// it: the upstream, the gateway's error, or another policy's answer.
type responseHeaders struct{ p *headerEdits }

// Run does nothing: response-headers acts in Respond.
func (*responseHeaders) Run(*policy.Context) bool { return true }

func (r *responseHeaders) Respond(c *policy.Context, _ int) {
	p := r.p
	for _, n := range p.remove {
		c.DelResponseHeader(n)
	}
	for _, rn := range p.rename {
		c.RenameResponseHeader(rn[0], rn[1])
	}
	for i := range p.set {
		c.SetResponseHeader(p.set[i].name, p.set[i].value.value(c))
	}
	for i := range p.add {
		c.AddResponseHeader(p.add[i].name, p.add[i].value.value(c))
	}
}
