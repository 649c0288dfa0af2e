package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Errors a user can fix alone say how: an admin node whose CA is not
// trusted, a login that expired, a token revoked. Others are left as
// they are.
func TestErrorHints(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	answer := func(code int, body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	expired := answer(401, `{"error":{"code":"unauthorized","message":"token expired"}}`)
	revoked := answer(401, `{"error":{"code":"unauthorized","message":"token revoked"}}`)
	away := answer(503, `{"error":{"code":"unavailable","message":"this admin node cannot reach the domain's database: nothing was changed"}}`)
	forbidden := answer(403, `{"error":{"code":"forbidden","message":"permission group:read required"}}`)
	tests := []struct {
		addr       string
		want       []string
		wantNoHint bool
	}{
		{tlsSrv.URL, []string{"certificate signed by unknown authority", "hint: ", "--ca-cert FILE", "$GATEHOUSE_CACERT", "gatehouse login --addr URL --ca-fingerprint"}, false},
		{expired.URL, []string{"token expired", "hint: your login has expired: run `gatehouse login` again"}, false},
		{revoked.URL, []string{"token revoked", "hint: the token is no longer valid: run `gatehouse login` again"}, false},
		{forbidden.URL, []string{"permission group:read required"}, true},
		{away.URL, []string{"cannot reach the domain's database", "hint: ", "gateways keep serving", "Runbook"}, false},
	}
	for _, tt := range tests {
		_, _, err := run(t, testEnv(map[string]string{envAddr: tt.addr, envToken: "gh_x", envConfig: t.TempDir() + "/cli.json"}, ""), "group", "list")
		if err == nil {
			t.Fatalf("%s: no error", tt.addr)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
		if tt.wantNoHint && strings.Contains(err.Error(), "hint:") {
			t.Errorf("error %q has a hint", err)
		}
	}
}

// With the database away, gatehouse status says so and names the admin
// node that answered, rather than an internal error.
func TestStatusDatabaseUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"this admin node cannot reach the domain's database: nothing was changed"}}`))
	}))
	defer srv.Close()
	_, _, err := run(t, testEnv(map[string]string{envAddr: srv.URL, envToken: "gh_x", envConfig: t.TempDir() + "/cli.json"}, ""), "status")
	want := "database unreachable through the admin node at " + srv.URL + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("status with the database away: %v, want it to start with %q", err, want)
	}
}
