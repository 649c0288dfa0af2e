package jsonnames

import (
	"encoding"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

var snake = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// Problems lists the fields of the values' types, and of the types they
// hold, whose JSON name is not snake_case, as "Type.Field: name".
// Types that encode themselves (json.Marshaler, encoding.TextMarshaler,
// such as time.Time) and interface values are not looked into.
func Problems(values ...any) []string {
	c := checker{seen: map[reflect.Type]bool{}}
	for _, v := range values {
		if v != nil {
			c.walk(reflect.TypeOf(v))
		}
	}
	slices.Sort(c.problems)
	return c.problems
}

type checker struct {
	seen     map[reflect.Type]bool
	problems []string
}

func (c *checker) walk(t reflect.Type) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() == reflect.Map {
		// Keys are data, not names.
		c.walk(t.Elem())
		return
	}
	if t.Kind() != reflect.Struct || c.seen[t] || encodesItself(t) {
		return
	}
	c.seen[t] = true
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name == "-" && tag == "-":
			continue
		case name == "" && f.Anonymous:
			// Embedded: its fields are promoted, and checked as its own.
		case !snake.MatchString(name):
			shown := name
			if shown == "" {
				shown = "no json tag, encoded as " + f.Name
			}
			c.problems = append(c.problems, t.String()+"."+f.Name+": "+shown)
		}
		c.walk(f.Type)
	}
}

func encodesItself(t reflect.Type) bool {
	return t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler)
}
