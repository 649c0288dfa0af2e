package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// raw sends a GET with headers and answers the response and its body as
// sent (not decompressed).
func raw(t *testing.T, c *http.Client, u string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestTransferIsSmall: the live parts and the static files come with an
// ETag, are not sent again (304) when unchanged, and are gzipped for who
// accepts it; pages, which carry the CSRF token, never are.
func TestTransferIsSmall(t *testing.T) {
	f := newFixture(t)
	f.quietInstance(t)
	c := f.browser(t)
	f.signIn(t, c, "admin", password)
	// The client must not ask for gzip itself: the tests set the header.
	c.Transport.(*http.Transport).DisableCompression = true
	tests := []struct {
		path, contentType, contains string
		cacheControl                string
	}{
		{"/ui/live/overview", "application/json", `data-group=\"shown\"`, "no-store"},
		{"/ui/live/groups/shown", "application/json", `id=\"instances\"`, "no-store"},
		{"/ui/live/instances/quiet", "application/json", `data-instance=\"quiet\"`, "no-store"},
		{"/ui/static/console.js", "text/javascript; charset=utf-8", "If-None-Match", "no-cache"},
		{"/ui/static/console.css", "text/css; charset=utf-8", "color-scheme", "no-cache"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, plain := raw(t, c, f.srv.URL+tt.path)
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" || etag == "" ||
				resp.Header.Get("Content-Type") != tt.contentType || resp.Header.Get("Cache-Control") != tt.cacheControl ||
				!strings.Contains(string(plain), tt.contains) {
				t.Fatalf("plain: %d %v\n%s", resp.StatusCode, resp.Header, plain)
			}
			resp, zipped := raw(t, c, f.srv.URL+tt.path, "Accept-Encoding", "gzip, deflate")
			// A live part holds the time of its answer: the same but for that.
			if resp.Header.Get("Content-Encoding") != "gzip" || len(zipped) >= len(plain) || !strings.Contains(gunzip(t, zipped), tt.contains) {
				t.Errorf("gzip: %d %v, %d bytes for %d", resp.StatusCode, resp.Header, len(zipped), len(plain))
			}
			resp, body := raw(t, c, f.srv.URL+tt.path, "If-None-Match", etag)
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Errorf("If-None-Match %s: %d %v, %d bytes", etag, resp.StatusCode, resp.Header, len(body))
			}
			if resp, _ := raw(t, c, f.srv.URL+tt.path, "If-None-Match", `"other"`); resp.StatusCode != http.StatusOK {
				t.Errorf("If-None-Match another: %d", resp.StatusCode)
			}
		})
	}
	for _, p := range []string{"/ui/", "/ui/groups/shown", "/ui/admin/users"} {
		resp, body := raw(t, c, f.srv.URL+p, "Accept-Encoding", "gzip")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" || !bytes.Contains(body, []byte(`name="csrf"`)) {
			t.Errorf("%s: %d %v", p, resp.StatusCode, resp.Header)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"GZIP", true},
		{"gzip;q=0", false},
		{"br", false},
		{"xgzip", false},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", tt.header)
		if got := acceptsGzip(r); got != tt.want {
			t.Errorf("Accept-Encoding %q: %v, want %v", tt.header, got, tt.want)
		}
	}
}
