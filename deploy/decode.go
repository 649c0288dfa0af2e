package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/fieldpath"
)

// maxKeyLength bounds the keys of policy configurations. YAML parsers give
// up on implicit keys longer than 1024 characters, which the keys of the
// canonical JSON encoding are; 128 characters stay below that even when
// every character is written as a six-character \u escape.
const maxKeyLength = 128

// Decode reads a configuration written in YAML or JSON (JSON being YAML).
//
// It is strict, because a gateway silently ignoring a misspelt field serves
// something other than what its operator wrote: unknown fields, values of
// the wrong type, duplicate keys, several YAML documents, and YAML aliases
// and merge keys (which would make the canonical form differ from the file
// in ways that are hard to see) are errors. Null stands for the zero value
// of any field, as in JSON. Field names are the json tags of Config.
//
// Empty input (nothing but whitespace and comments, or a null document) is
// an error rather than an empty configuration: applying an empty file would
// remove every route of a gateway, which is never what a truncated or
// mistyped file meant. An explicitly empty mapping ("{}") is accepted.
//
// The error is always Errors, holding every problem found with its field
// path and YAML line; the Config is nil when there is an error. Decode only
// checks the shape of the file; call Validate for the rules.
func Decode(data []byte) (*Config, error) {
	root, err := parseDocument(data)
	if err != nil {
		return nil, Errors{{Message: err.Error()}}
	}
	var cfg Config
	var d decoder
	d.value(root, reflect.ValueOf(&cfg).Elem(), "")
	if err := d.errs.Err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// DecodeFile reads and decodes the configuration file at path.
func DecodeFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode configuration %s:\n%w", path, err)
	}
	return cfg, nil
}

// parseDocument returns the root node of the single document in data.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("configuration is empty")
		}
		return nil, yamlError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, fmt.Errorf("only one YAML document is allowed, found another (line %d)", next.Line)
	case !errors.Is(err, io.EOF):
		return nil, yamlError(err)
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, errors.New("configuration is empty")
	}
	return root, nil
}

// yamlError reports a syntax error of the YAML parser with the line it
// is on. yaml.v3 numbers the lines of its scanner's errors from 1 but
// those of its parser's (an unclosed "[", a key out of place) from 0, and
// names no line when that is 0; parserProblems tells them apart.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, problem, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, problem
			}
		}
	}
	if parserProblems[msg] {
		line++
	}
	if line == 0 {
		return fmt.Errorf("invalid YAML: %s", msg)
	}
	return fmt.Errorf("invalid YAML: line %d: %s", line, msg)
}

// parserProblems are the errors of yaml.v3's parser, as opposed to its
// scanner: those whose line it reports one too low.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// decoder fills Go values from a YAML node tree, collecting every error.
type decoder struct {
	errs Errors
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs.Addf(path, "%s (line %d)", fmt.Sprintf(format, args...), n.Line)
}

var (
	durationType = reflect.TypeFor[Duration]()
	anyType      = reflect.TypeFor[any]()
)

// value decodes n into v, which holds its zero value.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if !d.supported(n, path) || isNull(n) {
		return
	}
	if v.Type() == durationType {
		if s, ok := d.text(n, path, "a duration string such as \"5s\""); ok {
			dur, err := ParseDuration(s)
			if err != nil {
				d.fail(n, path, "%s", err)
				return
			}
			v.SetInt(int64(dur))
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		if s, ok := d.text(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int:
		if !d.scalar(n, path, "!!int", "an integer") {
			return
		}
		var i int
		if err := n.Decode(&i); err != nil {
			d.fail(n, path, "must be an integer that fits in 64 bits")
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		if !d.scalar(n, path, "!!bool", "a boolean") {
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fail(n, path, "must be true or false")
			return
		}
		v.SetBool(b)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.value(n, v.Elem(), path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "must be a list, got %s", describe(n))
			return
		}
		// An empty list is stored as nil, as an absent one is, so that
		// both have the same canonical encoding.
		if len(n.Content) == 0 {
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), fieldpath.Index(path, i))
		}
		v.Set(s)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem() != anyType {
			panic(fmt.Sprintf("deploy: cannot decode into %s", v.Type()))
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "must be a mapping, got %s", describe(n))
			return
		}
		v.Set(reflect.ValueOf(d.mapping(n, path)))
	default:
		// Only reachable by adding a field of a new kind to Config.
		panic(fmt.Sprintf("deploy: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	d.entries(n, path, func(key string, k, val *yaml.Node) {
		p := fieldpath.Join(path, key)
		i, ok := fields[key]
		if !ok {
			d.fail(k, p, "unknown field")
			return
		}
		d.value(val, v.Field(i), p)
	})
}

// entries calls fn for every entry of the mapping n whose key is usable,
// reporting the others.
func (d *decoder) entries(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.AliasNode:
			d.fail(k, path, "YAML aliases are not supported")
			continue
		case k.Kind != yaml.ScalarNode:
			d.fail(k, path, "keys must be strings, got %s", describe(k))
			continue
		case k.ShortTag() == "!!merge":
			d.fail(k, path, "YAML merge keys (<<) are not supported")
			continue
		case k.ShortTag() == "!!null":
			d.fail(k, path, "keys must be strings, got null")
			continue
		}
		p := fieldpath.Join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			d.fail(k, p, "duplicate key, first at line %d", line)
			continue
		}
		first[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

// mapping decodes a mapping of any values, as policy configurations are.
func (d *decoder) mapping(n *yaml.Node, path string) map[string]any {
	m := make(map[string]any, len(n.Content)/2)
	d.entries(n, path, func(key string, k, v *yaml.Node) {
		p := fieldpath.Join(path, key)
		if utf8.RuneCountInString(key) > maxKeyLength {
			d.fail(k, p, "keys must be at most %d characters", maxKeyLength)
			return
		}
		m[key] = d.anyValue(v, p)
	})
	return m
}

// anyValue decodes n into the types encoding/json would give, except that
// integers stay int so that policies need not convert float64 counts.
func (d *decoder) anyValue(n *yaml.Node, path string) any {
	if !d.supported(n, path) {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		return d.mapping(n, path)
	case yaml.SequenceNode:
		list := make([]any, len(n.Content))
		for i, item := range n.Content {
			list[i] = d.anyValue(item, fieldpath.Index(path, i))
		}
		return list
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!str", "!!timestamp":
		s, _ := d.text(n, path, "a string")
		return s
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fail(n, path, "must be true or false")
		}
		return b
	case "!!int":
		var i int
		if err := n.Decode(&i); err == nil {
			return i
		}
		// Beyond 64 bits, as JSON numbers are everywhere.
		return d.float(n, path)
	case "!!float":
		return d.float(n, path)
	default:
		d.fail(n, path, "unsupported YAML tag %s", n.ShortTag())
		return nil
	}
}

func (d *decoder) float(n *yaml.Node, path string) float64 {
	var f float64
	if err := n.Decode(&f); err != nil {
		d.fail(n, path, "must be a number")
		return 0
	}
	// JSON has neither infinities nor NaN, and -0 would come back from the
	// canonical encoding as the integer 0.
	if math.IsInf(f, 0) || math.IsNaN(f) {
		d.fail(n, path, "must be a finite number")
		return 0
	}
	if f == 0 {
		return 0
	}
	return f
}

// supported reports aliases, which are refused so that every value is
// written where it applies (and so that a cyclic alias can't loop).
func (d *decoder) supported(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "YAML aliases are not supported")
		return false
	}
	return true
}

// scalar reports whether n is a scalar with the tag, reporting it when not.
func (d *decoder) scalar(n *yaml.Node, path, tag, want string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
		d.fail(n, path, "must be %s, got %s", want, describe(n))
		return false
	}
	return true
}

// text returns the string n holds. A plain date is a string too: it is one
// in JSON and in YAML 1.2, only YAML 1.1 made it a timestamp.
func (d *decoder) text(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!timestamp") {
		d.fail(n, path, "must be %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of value n holds, for type errors. Values are not
// quoted in messages as they may be secrets.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	case "!!timestamp":
		return "a timestamp"
	case "!!binary":
		return "binary data"
	default:
		return "a value tagged " + tag
	}
}
