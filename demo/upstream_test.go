package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerEchoesRequest(t *testing.T) {
	srv := httptest.NewServer(Handler("orders"))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/orders/7?x=1", strings.NewReader("hello"))
	req.Header.Set("X-Request-Id", "abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Upstream != "orders" || e.Method != "POST" || e.Path != "/orders/7" || e.Query != "x=1" ||
		e.BodySize != 5 || e.Headers["X-Request-Id"] != "abc" {
		t.Fatalf("echo = %+v", e)
	}
}
