package policy

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse/fieldpath"
)

// Reader reads a policy's configuration (the values the configuration
// decoder gives: map[string]any, []any, string, int, float64, bool, nil)
// and collects every problem with its path, so that a kind's New reads its
// fields one by one and reports them all at once. A missing optional field
// leaves the default the caller passes.
type Reader struct {
	path string
	m    map[string]any
	seen map[string]bool
	errs *ConfigErrors
}

// NewReader reads config; errs receives the problems.
func NewReader(config map[string]any, errs *ConfigErrors) *Reader {
	return &Reader{m: config, seen: map[string]bool{}, errs: errs}
}

func (r *Reader) at(key string) (any, string, bool) {
	r.seen[key] = true
	v, ok := r.m[key]
	if ok && v == nil {
		ok = false
	}
	return v, fieldpath.Join(r.path, key), ok
}

// Has reports whether key is set (to something other than null).
func (r *Reader) Has(key string) bool {
	v, ok := r.m[key]
	return ok && v != nil
}

// Fail records a problem at key, a field name or a path below the
// reader's object (fieldpath.Join("headers", name)).
func (r *Reader) Fail(key, message string) { r.errs.Add(fieldpath.Under(r.path, key), message) }

// Failf records a problem at key with a formatted message.
func (r *Reader) Failf(key, format string, args ...any) {
	r.errs.Addf(fieldpath.Under(r.path, key), format, args...)
}

// Path is where this reader reads, for messages about the whole object.
func (r *Reader) Path() string { return r.path }

// Required records a missing key.
func (r *Reader) Required(key string) bool {
	if _, _, ok := r.at(key); !ok {
		r.Fail(key, "required")
		return false
	}
	return true
}

// String reads a string.
func (r *Reader) String(key, def string) string {
	v, p, ok := r.at(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		r.errs.Addf(p, "must be a string, got %s", describe(v))
		return def
	}
	return s
}

// OneOf reads a string that must be one of allowed; def when missing.
func (r *Reader) OneOf(key, def string, allowed ...string) string {
	s := r.String(key, def)
	if r.Has(key) && !slices.Contains(allowed, s) {
		r.Failf(key, "must be %s", orList(allowed))
		return def
	}
	return s
}

// Int reads an integer within [min, max].
func (r *Reader) Int(key string, def, min, max int) int {
	v, p, ok := r.at(key)
	if !ok {
		return def
	}
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x > math.MaxInt64 {
			r.errs.Add(p, "must be an integer")
			return def
		}
		n = int(x)
	default:
		r.errs.Addf(p, "must be an integer, got %s", describe(v))
		return def
	}
	if n < min || n > max {
		r.errs.Addf(p, "must be between %d and %d", min, max)
		return def
	}
	return n
}

// Bool reads a boolean.
func (r *Reader) Bool(key string, def bool) bool {
	v, p, ok := r.at(key)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		r.errs.Addf(p, "must be true or false, got %s", describe(v))
		return def
	}
	return b
}

// Duration reads a Go duration string ("1s", "250ms") within [min, max].
func (r *Reader) Duration(key string, def, min, max time.Duration) time.Duration {
	v, p, ok := r.at(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		r.errs.Addf(p, `must be a duration such as "1s" or "250ms", got %s`, describe(v))
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		r.errs.Add(p, `must be a duration such as "1s" or "250ms"`)
		return def
	}
	if d < min || d > max {
		r.errs.Addf(p, "must be between %s and %s", min, max)
		return def
	}
	return d
}

// Strings reads a list of strings.
func (r *Reader) Strings(key string) []string {
	v, p, ok := r.at(key)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		r.errs.Addf(p, "must be a list of strings, got %s", describe(v))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		s, isStr := item.(string)
		if !isStr {
			r.errs.Addf(fieldpath.Index(p, i), "must be a string, got %s", describe(item))
			continue
		}
		out = append(out, s)
	}
	return out
}

// StringMap reads a mapping of strings to strings.
func (r *Reader) StringMap(key string) map[string]string {
	v, p, ok := r.at(key)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		r.errs.Addf(p, "must be a mapping of strings, got %s", describe(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range SortedKeys(m) {
		item := m[k]
		s, isStr := item.(string)
		if !isStr {
			r.errs.Addf(fieldpath.Join(p, k), "must be a string, got %s", describe(item))
			continue
		}
		out[k] = s
	}
	return out
}

// Any reads a value as it is (for configurations passed on, such as an
// external policy's own).
func (r *Reader) Any(key string) any {
	v, _, _ := r.at(key)
	return v
}

// Object reads a nested mapping with fn; it reports whether one was there.
func (r *Reader) Object(key string, fn func(*Reader)) bool {
	v, p, ok := r.at(key)
	if !ok {
		return false
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		r.errs.Addf(p, "must be a mapping, got %s", describe(v))
		return false
	}
	sub := &Reader{path: p, m: m, seen: map[string]bool{}, errs: r.errs}
	fn(sub)
	sub.Done()
	return true
}

// List reads a list of mappings, calling fn for each element.
func (r *Reader) List(key string, fn func(i int, r *Reader)) int {
	v, p, ok := r.at(key)
	if !ok {
		return 0
	}
	list, isList := v.([]any)
	if !isList {
		r.errs.Addf(p, "must be a list, got %s", describe(v))
		return 0
	}
	for i, item := range list {
		ip := fieldpath.Index(p, i)
		m, isMap := item.(map[string]any)
		if !isMap {
			r.errs.Addf(ip, "must be a mapping, got %s", describe(item))
			continue
		}
		sub := &Reader{path: ip, m: m, seen: map[string]bool{}, errs: r.errs}
		fn(i, sub)
		sub.Done()
	}
	return len(list)
}

// Done reports the keys nobody read: a misspelt option must not be
// silently ignored.
func (r *Reader) Done() {
	var unknown []string
	for k := range r.m {
		if !r.seen[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		r.errs.Add(fieldpath.Join(r.path, k), "unknown field")
	}
}

// SortedKeys returns m's keys in order, so that what is checked or built
// from a mapping comes out the same every time.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case int:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "an unsupported value"
}

func orList(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = `"` + w + `"`
	}
	switch len(q) {
	case 0:
		return "nothing"
	case 1:
		return q[0]
	}
	out := q[0]
	for _, w := range q[1 : len(q)-1] {
		out += ", " + w
	}
	return out + " or " + q[len(q)-1]
}
