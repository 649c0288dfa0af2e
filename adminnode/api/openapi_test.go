package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"
)

// TestOpenAPIDescribesEveryRoute walks the routes registered on the router
// (not the table they come from, so that a route added around the table is
// caught too) and checks each method and path is described by a valid
// OpenAPI 3 document served at /openapi.json.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := newEnv(t)
	body := e.do(e.admin, "GET", "/openapi.json", nil).expect(t, http.StatusOK, "openapi").body
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("load OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	described := 0
	err = e.srv.router.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := r.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := r.GetMethods()
		if err != nil {
			return nil // the /api/v1 subrouter itself
		}
		item := doc.Paths.Find(path)
		if item == nil {
			t.Errorf("%s is not described", path)
			return nil
		}
		for _, m := range methods {
			op := item.GetOperation(m)
			if op == nil {
				t.Errorf("%s %s is not described", m, path)
				continue
			}
			if op.Summary == "" || op.OperationID == "" {
				t.Errorf("%s %s has no summary or operationId", m, path)
			}
			if op.Responses.Default() == nil {
				t.Errorf("%s %s does not describe its errors", m, path)
			}
			described++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if described != len(e.srv.routes()) {
		t.Errorf("%d routes registered and described, %d in the table", described, len(e.srv.routes()))
	}
	// Public routes say so; the others require the bearer scheme.
	for _, rt := range e.srv.routes() {
		op := doc.Paths.Find(rt.fullPath()).GetOperation(strings.ToUpper(rt.method))
		if public := op.Security != nil && len(*op.Security) == 0; public != (rt.public || rt.agent) {
			t.Errorf("%s %s: described public=%t, is public=%t", rt.method, rt.path, public, rt.public)
		}
	}
}
