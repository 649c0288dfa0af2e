package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/fieldpath"
)

// Kinds of resources in a Change, in the order Diff lists them.
const (
	KindUpstream     = "upstream"
	KindService      = "service"
	KindRoute        = "route"
	KindConsumer     = "consumer"
	KindCertificate  = "certificate"
	KindGlobalPolicy = "global_policy"
)

// Operations of a Change.
const (
	OpAdded   = "added"
	OpRemoved = "removed"
	OpChanged = "changed"
)

// Placeholders that stand for values a diff must not show.
const (
	Redacted = "(redacted)"
	// ChangedPEM stands for a certificate chain: not secret, but a whole
	// PEM says nothing to a reader of a diff.
	ChangedPEM = "(changed)"
)

// Change is what happened to one resource between two configurations.
type Change struct {
	Kind string `json:"kind"`
	// Name is the resource's name; "service/route" for routes, and
	// "name[index]" for global policies, which have no name of their own
	// and whose order matters.
	Name string `json:"name"`
	Op   string `json:"op"`
	// Fields are the differences of a changed resource, in path order.
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one differing value of a changed resource. Path is
// relative to the resource, in the form of validation errors
// ("targets[1].address", "timeouts.read"). From or To is nil when the field
// is absent (or null) on that side; a list that grew or shrank shows as
// elements added or removed at its end. Secrets are replaced by Redacted
// and certificate chains by ChangedPEM, including inside larger values.
type FieldChange struct {
	Path string `json:"path"`
	From any    `json:"from,omitempty"`
	To   any    `json:"to,omitempty"`
}

// Diff compares two configurations resource by resource, for the diff of
// two deployments and for promotion. Resources are matched by name (routes
// by service and name, so a route moved to another service is removed from
// one and added to the other; global policies by position and name). A
// service's change leaves out its routes, which are resources of their
// own. Changes are in the order of the Kind constants, then by name
// (global policies by position). Identical configurations give no changes.
//
// Values are compared in their canonical JSON form, which is what gateways
// receive: fields that encode the same are the same. Names are unique in
// a valid configuration; with duplicates, the last one counts.
func Diff(from, to *Config) []Change {
	var changes []Change
	for _, kind := range kinds {
		changes = append(changes, diffKind(kind, resources(kind, from), resources(kind, to))...)
	}
	return changes
}

var kinds = []string{KindUpstream, KindService, KindRoute, KindConsumer, KindCertificate, KindGlobalPolicy}

// resource is one resource of a configuration in its JSON form.
type resource struct {
	name string
	// order sorts the changes of a kind before the name; only global
	// policies have one, their position.
	order int
	value any
}

func resources(kind string, c *Config) map[string]resource {
	rs := make(map[string]resource)
	if c == nil {
		return rs
	}
	add := func(name string, order int, v any) {
		rs[name] = resource{name: name, order: order, value: jsonValue(v)}
	}
	switch kind {
	case KindUpstream:
		for _, u := range c.Upstreams {
			add(u.Name, 0, u)
		}
	case KindService:
		for _, s := range c.Services {
			s.Routes = nil
			add(s.Name, 0, s)
		}
	case KindRoute:
		for _, s := range c.Services {
			for _, r := range s.Routes {
				add(s.Name+"/"+r.Name, 0, r)
			}
		}
	case KindConsumer:
		for _, cs := range c.Consumers {
			add(cs.Name, 0, cs)
		}
	case KindCertificate:
		for _, cert := range c.Certificates {
			add(cert.Name, 0, cert)
		}
	case KindGlobalPolicy:
		for i, p := range c.GlobalPolicies {
			add(p.Name+"["+strconv.Itoa(i)+"]", i, p)
		}
	}
	return rs
}

// jsonValue returns v as encoding/json decodes its encoding, with numbers
// kept as json.Number so that large integers of policy configurations are
// compared and shown exactly. A value that does not encode (a NaN put in a
// policy configuration by code) stands as the error's text, so that the
// diff still shows that something is there.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("(cannot encode: %v)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	// This cannot fail on what json.Marshal has just written.
	_ = dec.Decode(&out)
	return out
}

func diffKind(kind string, from, to map[string]resource) []Change {
	var changes []Change
	order := make(map[string]int)
	for name, r := range from {
		order[name] = r.order
		t, ok := to[name]
		if !ok {
			changes = append(changes, Change{Kind: kind, Name: name, Op: OpRemoved})
			continue
		}
		var fields []FieldChange
		diffValue(kind, "", r.value, t.value, &fields)
		if len(fields) > 0 {
			changes = append(changes, Change{Kind: kind, Name: name, Op: OpChanged, Fields: fields})
		}
	}
	for name, r := range to {
		if _, ok := from[name]; !ok {
			order[name] = r.order
			changes = append(changes, Change{Kind: kind, Name: name, Op: OpAdded})
		}
	}
	slices.SortFunc(changes, func(a, b Change) int {
		if c := order[a.Name] - order[b.Name]; c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return changes
}

// diffValue appends to fields the differences between a and b, found at
// path of a resource of kind. Objects are compared key by key and lists
// element by element, so that a change is reported where it is rather
// than as a whole new value.
func diffValue(kind, path string, a, b any, fields *[]FieldChange) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			union := maps.Clone(av)
			maps.Copy(union, bv)
			for _, k := range slices.Sorted(maps.Keys(union)) {
				diffValue(kind, fieldpath.Join(path, k), av[k], bv[k], fields)
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			for i := range max(len(av), len(bv)) {
				var ae, be any
				if i < len(av) {
					ae = av[i]
				}
				if i < len(bv) {
					be = bv[i]
				}
				diffValue(kind, fieldpath.Index(path, i), ae, be, fields)
			}
			return
		}
	}
	if equalJSON(a, b) {
		return
	}
	*fields = append(*fields, FieldChange{Path: path, From: scrub(kind, path, a), To: scrub(kind, path, b)})
}

// equalJSON compares two decoded JSON values that are not both objects or
// both lists, so only scalars can be equal.
func equalJSON(a, b any) bool {
	switch a.(type) {
	case map[string]any, []any:
		return false
	}
	switch b.(type) {
	case map[string]any, []any:
		return false
	}
	return a == b
}

// secretPaths are the fields whose values a diff never shows, by kind.
var secretPaths = map[string]*regexp.Regexp{
	KindConsumer:    regexp.MustCompile(`^credentials\[\d+\]\.(key|password|secret)$`),
	KindCertificate: regexp.MustCompile(`^key$`),
}

// placeholder returns what stands for the value at path of a resource of
// kind, or "" when the value can be shown.
func placeholder(kind, path string) string {
	if re := secretPaths[kind]; re != nil && re.MatchString(path) {
		return Redacted
	}
	if kind == KindCertificate && path == "cert" {
		return ChangedPEM
	}
	return ""
}

// scrub returns v, found at path of a resource of kind, with its secrets
// and certificate chains replaced by placeholders. Whole values are
// reported when a field or list element appears or disappears, and those
// can hold secrets: a new credential holds its key.
func scrub(kind, path string, v any) any {
	if v == nil {
		return nil
	}
	if p := placeholder(kind, path); p != "" {
		return p
	}
	switch vv := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(vv))
		for k, e := range vv {
			out[k] = scrub(kind, fieldpath.Join(path, k), e)
		}
		return out
	case []any:
		out := make([]any, len(vv))
		for i, e := range vv {
			out[i] = scrub(kind, fieldpath.Index(path, i), e)
		}
		return out
	}
	return v
}

// String returns the change on one line for people, with "+", "-" or "~"
// for added, removed or changed, and the changed fields separated by "; ":
//
//	~ route orders/list-orders: methods[0] "GET" -> "POST"
//
// Values are JSON; an absent value is null. Secret fields show only that
// they changed.
func (c Change) String() string {
	sign := "~"
	switch c.Op {
	case OpAdded:
		sign = "+"
	case OpRemoved:
		sign = "-"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", sign, c.Kind, c.Name)
	for i, f := range c.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Path)
		if p := placeholder(c.Kind, f.Path); p != "" {
			b.WriteString(" " + p)
			continue
		}
		b.WriteString(" " + showJSON(f.From) + " -> " + showJSON(f.To))
	}
	return b.String()
}

func showJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
