package placeholder

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/deploy"
)

// field is where a string of a configuration is, and what it may hold.
type field struct {
	// path is the field path, as validation errors write it.
	path string
	// literal fields (tagged placeholder:"no") cannot hold placeholders.
	literal bool
	// secret fields hold secrets.
	secret bool
}

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
	out := walk(reflect.ValueOf(cfg).Elem(), field{}, visit).Interface().(deploy.Config)
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
			out.Index(i).Set(walk(v.Index(i), field{deploy.IndexPath(f.path, i), f.literal, f.secret}, visit))
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
			kf := field{deploy.FieldPath(f.path, k.String()), f.literal, f.secret || secretKey(k.String())}
			out.SetMapIndex(k, walk(v.MapIndex(k), kf, visit))
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
		ff := field{path: deploy.FieldPath(f.path, name)}
		switch tag := sf.Tag.Get("placeholder"); tag {
		case "":
		case "no":
			ff.literal = true
		case "secret":
			ff.secret = true
		default:
			panic(fmt.Sprintf("placeholder: %s.%s has an unknown placeholder tag %q", t, sf.Name, tag))
		}
		out.Field(i).Set(walk(v.Field(i), ff, visit))
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
