package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// The OpenAPI description is made from the route table and the Go types
// of the bodies, so that it describes what the server does rather than
// what someone remembered to write down.

var pathVar = regexp.MustCompile(`\{([a-z]+)\}`)

func (s *Server) openapi(q *request) (any, error) {
	return json.RawMessage(s.openAPI()), nil
}

func (s *Server) openAPI() []byte {
	s.specOnce.Do(func() {
		s.spec, _ = json.Marshal(buildOpenAPI(s.routes()))
	})
	return s.spec
}

// schemas collects named component schemas while describing types.
type schemas map[string]any

func buildOpenAPI(routes []*route) map[string]any {
	comps := schemas{}
	errRef := comps.of(reflect.TypeOf(apitypes.ErrorBody{}))
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		p := rt.fullPath()
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{
			"operationId": rt.action,
			"summary":     rt.summary,
			"tags":        []string{strings.SplitN(rt.action, ".", 2)[0]},
		}
		if rt.perm != "" {
			op["description"] = "Permission: " + rt.perm + "."
		}
		var params []any
		for _, m := range pathVar.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, name := range rt.query {
			required := rt.scope == scopeQueryGroup && name == "group"
			params = append(params, map[string]any{"name": name, "in": "query", "required": required, "schema": map[string]any{"type": "string"}})
		}
		if rt.method == http.MethodPut && (strings.HasSuffix(rt.path, "/draft") || strings.HasPrefix(rt.path, "/groups/{group}") && !strings.Contains(rt.path, "/draft") ||
			rt.path == "/environments/{env}") {
			params = append(params, map[string]any{"name": "If-Match", "in": "header", "required": strings.HasSuffix(rt.path, "/draft"),
				"schema": map[string]any{"type": "string"}, "description": "The ETag (version) the change is based on; another version gives 409."})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.in != nil {
			schema := comps.of(reflect.TypeOf(rt.in))
			content := map[string]any{"application/json": map[string]any{"schema": schema}}
			if rt.inRaw {
				content["application/yaml"] = map[string]any{"schema": schema}
			}
			op["requestBody"] = map[string]any{"required": rt.method != http.MethodPost || !rt.inRaw, "content": content}
		}
		responses := map[string]any{}
		ok := map[string]any{"description": http.StatusText(rt.status)}
		switch {
		case rt.produces != "":
			ok["content"] = map[string]any{rt.produces: map[string]any{"schema": map[string]any{"type": "string"}}}
		case rt.out != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": comps.of(reflect.TypeOf(rt.out))}}
		}
		if rt.out == nil && rt.produces == "" && rt.status == http.StatusOK {
			responses["204"] = map[string]any{"description": "No Content"}
		} else {
			responses[strconv.Itoa(rt.status)] = ok
		}
		responses["default"] = map[string]any{"description": "Error", "content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
		op["responses"] = responses
		switch {
		case rt.agent && !rt.public:
			op["security"] = []any{}
			op["description"] = "Node managers only: authenticated by their client certificate (mutual TLS) from the domain CA."
		case rt.public:
			op["security"] = []any{}
		}
		paths[p][strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Gatehouse admin API",
			"version":     "1",
			"description": "The admin node's API: groups, hosts, instances, drafts, deployments, users, roles, tokens, the audit log, environments and trusted domains.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": comps,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "A login or API token, gh_<id>_<secret>."},
			},
		},
		"security": []any{map[string]any{"bearer": []string{}}},
	}
}

var timeType = reflect.TypeOf(time.Time{})

// of returns the schema of t, registering named structs as components.
func (c schemas) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == reflect.TypeOf(json.RawMessage{}):
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := c.of(t.Elem())
		if _, isRef := s["$ref"]; isRef {
			return map[string]any{"allOf": []any{s}, "nullable": true}
		}
		s["nullable"] = true
		return s
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t.PkgPath() == "time" {
			return map[string]any{"type": "string", "description": "a duration such as 1m30s"}
		}
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": c.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": c.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if _, ok := reflect.New(t).Interface().(json.Unmarshaler); ok {
			// Types with their own text form (deploy.Duration).
			return map[string]any{"type": "string"}
		}
		name := t.Name()
		if t.PkgPath() != "" && !strings.HasSuffix(t.PkgPath(), "apitypes") {
			name = t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:] + "." + name
		}
		ref := map[string]any{"$ref": "#/components/schemas/" + name}
		if _, done := c[name]; done {
			return ref
		}
		c[name] = nil // placeholder against recursion
		c[name] = c.object(t)
		return ref
	}
	return map[string]any{}
}

func (c schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var embedded []any
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			embedded = append(embedded, c.of(f.Type))
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = c.of(f.Type)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
			required = append(required, name)
		}
	}
	obj := map[string]any{"type": "object", "properties": props}
	if required != nil {
		obj["required"] = required
	}
	if embedded != nil {
		return map[string]any{"allOf": append(embedded, obj)}
	}
	return obj
}
