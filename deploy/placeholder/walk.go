package placeholder

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/fieldpath"
)

// field is where a string of a configuration is, and what it may hold.
type field struct {
	// at is the walk's position, a segment per level; path renders it.
	// It is the walk's own stack, valid only during the visit: most
	// strings hold no placeholder and their path is never needed, so it
	// is not built for each of them.
	at *[]segment
	// literal fields (tagged placeholder:"no") cannot hold placeholders.
	literal bool
	// secret fields hold secrets.
	secret bool
}

// segment is one step of a field path: a field or map key by name, or a
// list element by index (index >= 0).
type segment struct {
	name  string
	index int
}

// path is the field path, as validation errors write it.
func (f field) path() string {
	if f.at == nil {
		return ""
	}
	p := ""
	for _, s := range *f.at {
		if s.index >= 0 {
			p = fieldpath.Index(p, s.index)
		} else {
			p = fieldpath.Join(p, s.name)
		}
	}
	return p
}

// in returns f one level down, at s, with the same stack.
func (f field) in(s segment, literal, secret bool) field {
	*f.at = append(*f.at, s)
	return field{at: f.at, literal: literal, secret: secret}
}

// out returns to f's level after a walk of one of its children.
func (f field) out() { *f.at = (*f.at)[:len(*f.at)-1] }

// visitor returns what replaces s, found at f.
type visitor func(f field, s string) string

// walkConfig returns a deep copy of cfg in which visit has replaced every
// string, visiting them in the order of the file: fields in the order of
// the structs, list elements in order, map keys sorted. The copy shares
// nothing with cfg, so that changing it, or resolving placeholders in it,
// never touches cfg. A nil cfg has no strings and gives nil.
func walkConfig(cfg *deploy.Config, visit visitor) *deploy.Config {
	if cfg == nil {
		return nil
	}
	var stack []segment
	out := walk(reflect.ValueOf(cfg).Elem(), field{at: &stack}, visit).Interface().(deploy.Config)
	return &out
}

// walk returns a deep copy of v, found at f, with its strings visited.
func walk(v reflect.Value, f field, visit visitor) reflect.Value {
	switch v.Kind() {
	case reflect.String:
		out := reflect.New(v.Type()).Elem()
		out.SetString(visit(f, v.String()))
		return out
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		// Values without strings in them, durations included, are copied
		// as they are.
		return v
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		if v.Kind() == reflect.Pointer {
			out.Set(reflect.New(v.Type().Elem()))
			out.Elem().Set(walk(v.Elem(), f, visit))
		} else {
			out.Set(walk(v.Elem(), f, visit))
		}
		return out
	case reflect.Struct:
		return walkStruct(v, f, visit)
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(walk(v.Index(i), f.in(segment{index: i}, f.literal, f.secret), visit))
			f.out()
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		if v.Type().Key().Kind() != reflect.String {
			panic(fmt.Sprintf("placeholder: cannot walk %s", v.Type()))
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		out := reflect.MakeMapWithSize(v.Type(), len(keys))
		for _, k := range keys {
			kf := f.in(segment{name: k.String(), index: -1}, f.literal, f.secret || secretKey(k.String()))
			out.SetMapIndex(k, walk(v.MapIndex(k), kf, visit))
			f.out()
		}
		return out
	default:
		// Only reachable by adding a field of a new kind to deploy.Config:
		// better to fail the tests than to skip strings silently.
		panic(fmt.Sprintf("placeholder: cannot walk %s", v.Type()))
	}
}

func walkStruct(v reflect.Value, f field, visit visitor) reflect.Value {
	t := v.Type()
	out := reflect.New(t).Elem()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			panic(fmt.Sprintf("placeholder: cannot walk the unexported field %s.%s", t, sf.Name))
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" {
			name = sf.Name
		}
		var literal, secret bool
		switch tag := sf.Tag.Get("placeholder"); tag {
		case "":
		case "no":
			literal = true
		case "secret":
			secret = true
		default:
			panic(fmt.Sprintf("placeholder: %s.%s has an unknown placeholder tag %q", t, sf.Name, tag))
		}
		out.Field(i).Set(walk(v.Field(i), f.in(segment{name: name, index: -1}, literal, secret), visit))
		f.out()
	}
	return out
}

// secretKey reports whether a value under this key of a policy
// configuration is a secret. Policies' configurations have no schema this
// package could read, so the rule is by name; see the package doc.
func secretKey(key string) bool {
	k := strings.ToLower(key)
	return k == "password" || k == "secret" || strings.HasSuffix(k, "_password") || strings.HasSuffix(k, "_secret")
}
