package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

func TestWatchDeploymentRequest(t *testing.T) {
	pub, priv, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := deploy.NewDeployment("dom", "web", 4, &deploy.Config{}, "alice", "", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Sign(priv)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != http.MethodGet || r.URL.Path != "/base"+PathDeployment ||
			q.Get(QueryInstance) != "web/1" || q.Get(QueryIndex) != "3" || q.Get(QueryWait) != "2s" ||
			r.Header.Get(HeaderAuthorization) != "Bearer s3cret" {
			t.Errorf("request %s %s, authorization %q", r.Method, r.URL, r.Header.Get(HeaderAuthorization))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// Indented, as a server may write it: the deployment must still
		// verify after the round trip.
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(DeploymentAnswer{Index: 4, Deployment: d})
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/base/", "web/1", "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := c.WatchDeployment(context.Background(), 3, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Index != 4 || ans.Deployment == nil || ans.Deployment.Number != 4 {
		t.Fatalf("answer %+v", ans)
	}
	if err := ans.Deployment.Verify(pub, nil); err != nil {
		t.Fatalf("deployment no longer verifies after the round trip: %v", err)
	}
}

func TestPushTrafficRequest(t *testing.T) {
	var got traffic.Snapshot
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.EscapedPath() != PathInstances+"/web-1/traffic" ||
			r.Header.Get(HeaderAuthorization) != "Bearer s" {
			t.Errorf("request %s %s", r.Method, r.URL.EscapedPath())
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c, err := New(srv.URL, "web-1", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := traffic.Snapshot{Group: "web", Instance: "web-1", Boot: "b", At: time.Unix(100, 0).UTC(),
		Series: []traffic.Series{{Key: traffic.Key{Service: "s", Route: "r", Class: traffic.Class2xx}, Counts: traffic.Counts{Requests: 2}}}}
	if err := c.PushTraffic(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("server got %+v, want %+v", got, want)
	}
}

func TestReportRequest(t *testing.T) {
	var got Report
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The instance name is one path segment, escaped.
		if r.Method != http.MethodPut || r.URL.EscapedPath() != PathInstances+"/web%2F1/report" {
			t.Errorf("request %s %s", r.Method, r.URL.EscapedPath())
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c, err := New(srv.URL, "web/1", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Report{AppliedDeployment: 7, AppliedChecksum: "sha256:ab", Ready: true, LastError: "deployment 8 refused"}
	if err := c.Report(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("server got %+v, want %+v", got, want)
	}
}

func TestErrorAnswers(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		body      string
		wantCode  string
		wantInMsg string
	}{
		{"error body", 401, `{"error":{"code":"unauthorized","message":"bad instance secret"}}`, "unauthorized", "bad instance secret"},
		{"plain text", 502, "upstream gone\n", "", "upstream gone"},
		{"empty", 503, "", "", "Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.code)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, _ := New(srv.URL, "i", "s", nil)
			_, err := c.WatchDeployment(context.Background(), 0, time.Second)
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.code || se.Code != tt.wantCode || se.Message != tt.wantInMsg {
				t.Fatalf("error %#v, want status %d code %q message %q", err, tt.code, tt.wantCode, tt.wantInMsg)
			}
		})
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8091", "ftp://x", "http://"} {
		if _, err := New(u, "i", "s", nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := New(DefaultURL, "", "s", nil); err == nil {
		t.Error("New accepted an empty instance name")
	}
}
