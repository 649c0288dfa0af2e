package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"
	"github.com/rclone/gofakes3/signature"
)

// Server is an in-process S3 server with one bucket.
type Server struct {
	// Endpoint is http://127.0.0.1:port.
	Endpoint string
	// Addr is 127.0.0.1:port, where virtual-host names must be dialled.
	Addr string
	// Bucket exists from the start.
	Bucket string
	// AccessKey and SecretKey are the only credentials it accepts, fresh
	// for each server.
	AccessKey, SecretKey string

	mu       sync.Mutex
	failNext int
	failCode int
	requests int
	virtual  int
}

// Start serves until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{Bucket: "gatehouse-test", AccessKey: "AKIA" + random(8), SecretKey: random(20)}
	backend := s3mem.New()
	if err := backend.CreateBucket(context.Background(), s.Bucket); err != nil {
		t.Fatal(err)
	}
	path := gofakes3.New(backend).Server()
	virtual := gofakes3.New(backend, gofakes3.WithHostBucket(true)).Server()
	lookup := func(key string) (string, bool) { return s.SecretKey, key == s.AccessKey }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	s.Endpoint = "http://" + s.Addr
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		isVirtual := net.ParseIP(host) == nil && host != "localhost"
		if code := s.count(isVirtual); code != 0 {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(code)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected failure</Message></Error>`, codeOf(code))
			return
		}
		// The signature is checked here, with the library's own check,
		// rather than by the server: gofakes3 v0.0.12 reads the empty
		// "delimiter=" that minio-go sends with every recursive listing
		// as a delimiter (S3 reads it as none), and the parameter can only
		// be dropped once the signature that covers it is checked.
		if code := signature.V4SignVerifyWithLookup(r, lookup); code != signature.ErrNone {
			e := signature.GetAPIError(code)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(e.HTTPStatusCode)
			w.Write(signature.EncodeAPIErrorToResponse(e))
			return
		}
		if q := r.URL.Query(); q.Has("delimiter") && q.Get("delimiter") == "" {
			q.Del("delimiter")
			r.URL.RawQuery = q.Encode()
		}
		if isVirtual {
			virtual.ServeHTTP(w, r)
			return
		}
		path.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func codeOf(status int) string {
	if status == http.StatusServiceUnavailable {
		return "SlowDown"
	}
	return "InternalError"
}

// count records a request and returns the status it must fail with, or
// 0.
func (s *Server) count(virtual bool) (failWith int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if virtual {
		s.virtual++
	}
	if s.failNext > 0 {
		s.failNext--
		return s.failCode
	}
	return 0
}

// FailNext makes the next n requests fail with status (500 InternalError
// or 503 SlowDown, as S3 throttles), before they reach the S3 handler.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failCode = n, status
}

// Requests returns how many requests came, and how many of them in
// virtual-host style.
func (s *Server) Requests() (all, virtual int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.virtual
}

// URL is the path-style s3:// URL of prefix in the bucket, with the
// endpoint as a query parameter.
func (s *Server) URL(prefix string) string {
	return "s3://" + s.Bucket + "/" + prefix + "?endpoint=" + url.QueryEscape(s.Endpoint) + "&style=path"
}

// Env is the environment that gives a process the server's credentials.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
}

// SetEnv gives the test's own process the server's credentials.
func (s *Server) SetEnv(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
