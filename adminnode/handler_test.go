package adminnode

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRootHandlerSendsPathsToTheirServer(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Served-By", name) })
	}
	h := rootHandler(named("api"), named("ui"))
	tests := []struct {
		method, path string
		want         string
		location     string
	}{
		{"GET", "/", "", "/ui/"},
		{"HEAD", "/", "", "/ui/"},
		{"POST", "/", "api", ""},
		{"GET", "/ui/", "ui", ""},
		{"GET", "/ui", "ui", ""},
		{"POST", "/ui/login", "ui", ""},
		{"GET", "/uix", "api", ""},
		{"GET", "/api/v1/health", "api", ""},
		{"GET", "/agent/v1/config", "api", ""},
		{"GET", "/nowhere", "api", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if got := w.Header().Get("X-Served-By"); got != tt.want {
				t.Errorf("served by %q, want %q", got, tt.want)
			}
			if got := w.Header().Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
		})
	}
}
