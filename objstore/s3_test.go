package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/s3test"
)

// exercise runs the Bucket contract on b.
func exercise(t *testing.T, b Bucket) {
	t.Helper()
	ctx := context.Background()
	for _, put := range []struct{ key, value string }{
		{"backups/a", "one"}, {"backups/a", "two"}, {"backups/b", "three"}, {"groups/web/current", "x"},
	} {
		if err := b.Put(ctx, put.key, strings.NewReader(put.value)); err != nil {
			t.Fatalf("put %s: %v", put.key, err)
		}
	}
	r, err := b.Get(ctx, "backups/a")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "two" {
		t.Fatalf("get = %q, want the last put", got)
	}
	objs, err := b.List(ctx, "backups/")
	if err != nil || len(objs) != 2 || objs[0].Key != "backups/a" || objs[0].Size != 3 || objs[1].Key != "backups/b" {
		t.Fatalf("list = %+v, %v", objs, err)
	}
	if time.Since(objs[0].Modified) > time.Hour {
		t.Errorf("modified %v, want about now", objs[0].Modified)
	}
	if err := b.Delete(ctx, "backups/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "backups/a"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("get after delete: %v, want ErrNotExist", err)
	}
	if err := b.Delete(ctx, "backups/a"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("second delete: %v, want ErrNotExist", err)
	}
	if objs, err := b.List(ctx, "nothing/"); err != nil || len(objs) != 0 {
		t.Fatalf("list of an empty prefix = %+v, %v", objs, err)
	}
}

// loopbackDialer sends every connection to addr, whatever the host name:
// a virtual-host name such as gatehouse-test.s3.test resolves nowhere.
func loopbackDialer(addr string) http.RoundTripper {
	return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
}

func TestS3Bucket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		virtual bool
	}{{"path-style", false}, {"virtual-host style", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := s3test.Start(t)
			srv.SetEnv(t)
			raw := srv.URL("site/one")
			var opts Options
			if tc.virtual {
				_, port, _ := net.SplitHostPort(srv.Addr)
				raw = "s3://" + srv.Bucket + "/site/one?endpoint=http://s3.test:" + port + "&style=virtual&region=us-east-1"
				opts.Transport = loopbackDialer(srv.Addr)
			}
			b, err := Open(context.Background(), raw, opts)
			if err != nil {
				t.Fatal(err)
			}
			exercise(t, b)
			all, virtual := srv.Requests()
			if tc.virtual && virtual != all {
				t.Errorf("%d of %d requests in virtual-host style, want all", virtual, all)
			}
			if !tc.virtual && virtual != 0 {
				t.Errorf("%d requests in virtual-host style, want none", virtual)
			}
			// The prefix is where the keys are: another prefix of the same
			// bucket does not see them.
			other, err := Open(context.Background(), srv.URL("site/two"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if objs, err := other.List(context.Background(), ""); err != nil || len(objs) != 0 {
				t.Errorf("another prefix lists %+v, %v", objs, err)
			}
		})
	}
}

// oneByteReader hides io.Seeker and io.WriterTo from the library, as a
// pipe or a network stream would.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestS3PutStreamsInPartsAndRetriesEach(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	b, err := Open(context.Background(), srv.URL("big"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s3 := b.(*S3)
	s3.partSize = 5 << 20 // S3's smallest part
	data := make([]byte, 11<<20+123)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	before, _ := srv.Requests()
	// Parts after the first are read from the stream while the upload
	// runs; the failures fall on the upload's first requests.
	srv.FailNext(2, http.StatusServiceUnavailable)
	if err := b.Put(context.Background(), "backup", oneByteReader{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	after, _ := srv.Requests()
	// Create, three parts, complete, and the two failures sent again.
	if after-before < 7 {
		t.Errorf("%d requests, want a multipart upload of 3 parts with 2 retries (≥ 7)", after-before)
	}
	r, err := b.Get(context.Background(), "backup")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want the %d put", len(got), err, len(data))
	}
}

func TestS3RetriesServerErrors(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	b, err := Open(context.Background(), srv.URL("p"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ops := []struct {
		name string
		do   func() error
	}{
		{"put", func() error { return b.Put(ctx, "k", strings.NewReader("v")) }},
		{"get", func() error {
			r, err := b.Get(ctx, "k")
			if err == nil {
				r.Close()
			}
			return err
		}},
		{"list", func() error { _, err := b.List(ctx, ""); return err }},
		{"delete", func() error { return b.Delete(ctx, "k") }},
	}
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable} {
		for _, op := range ops {
			if op.name == "delete" {
				if err := b.Put(ctx, "k", strings.NewReader("v")); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := srv.Requests()
			srv.FailNext(3, status)
			if err := op.do(); err != nil {
				t.Errorf("%s after 3 answers %d: %v", op.name, status, err)
			}
			if after, _ := srv.Requests(); after-before < 4 {
				t.Errorf("%s: %d requests, want the 3 failures and a success", op.name, after-before)
			}
		}
	}
}

func TestS3GivesUpOnAServerThatKeepsFailing(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	b, err := Open(context.Background(), srv.URL("p"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1000, http.StatusInternalServerError)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = b.Put(ctx, "k", strings.NewReader("v"))
	if err == nil || ctx.Err() != nil {
		t.Fatalf("put against a failing server: %v (context %v), want the server's error before the deadline", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "injected failure") || !strings.Contains(err.Error(), srv.Bucket) {
		t.Errorf("error %q does not say what failed where", err)
	}
}

func TestS3RefusedCredentialsAreNeverShown(t *testing.T) {
	srv := s3test.Start(t)
	dir := t.TempDir()
	goodFile := filepath.Join(dir, "good")
	os.WriteFile(goodFile, []byte("[default]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n"), 0o600)
	badSecret := "wrongsecret0123456789abcdef"
	badFile := filepath.Join(dir, "bad")
	os.WriteFile(badFile, []byte("[default]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+badSecret+"\n"), 0o600)
	malformed := filepath.Join(dir, "malformed")
	os.WriteFile(malformed, []byte("[default\naws_secret_access_key "+badSecret+"\n"), 0o600)
	for _, tc := range []struct {
		name, access, secret, file string
		ok                         bool
	}{
		{"environment", srv.AccessKey, srv.SecretKey, "", true},
		{"wrong secret", srv.AccessKey, badSecret, "", false},
		{"unknown key id", "AKIAUNKNOWN0000", srv.SecretKey, "", false},
		{"file over a wrong environment", "AKIAUNKNOWN0000", badSecret, goodFile, true},
		{"wrong secret in the file", srv.AccessKey, srv.SecretKey, badFile, false},
		{"malformed file", srv.AccessKey, srv.SecretKey, malformed, false},
		{"no credentials", "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", tc.access)
			t.Setenv("AWS_SECRET_ACCESS_KEY", tc.secret)
			t.Setenv("AWS_SESSION_TOKEN", "")
			t.Setenv("HOME", t.TempDir()) // no ~/.aws/credentials
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "")
			ctx := context.Background()
			b, err := Open(ctx, srv.URL("p"), Options{CredentialsFile: tc.file})
			if err == nil {
				err = b.Put(ctx, "k", strings.NewReader("v"))
			}
			if tc.ok != (err == nil) {
				t.Fatalf("error %v, want success %v", err, tc.ok)
			}
			if err == nil {
				return
			}
			for _, secret := range []string{srv.SecretKey, badSecret, srv.AccessKey} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a credential: %v", err)
				}
			}
			t.Log(err)
		})
	}
}

func TestS3URLs(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secretexample")
	t.Setenv(EnvEndpointS3, "")
	t.Setenv(EnvEndpoint, "")
	for _, tc := range []struct{ url, want string }{
		{"s3://b/p?endpoint=http://127.0.0.1:9000&style=path", ""},
		{"s3://b?endpoint=minio.example:9000", ""},
		{"s3://b/p?region=eu-west-1", ""},
		{"s3:///p", "no bucket"},
		{"s3://b/p?style=dns", `style "dns"`},
		{"s3://b/p?sercet=x", `unknown parameter "sercet"`},
		{"s3://b/p?endpoint=http://u:pw@host", "credentials do not belong"},
		{"s3://b/p?endpoint=ftp://host", `scheme "ftp"`},
		{"s3://b/p?endpoint=http://host/path", "without a path"},
		{"s3://b/a/../x", "segment"},
	} {
		_, err := Open(context.Background(), tc.url, Options{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: error shows the password: %v", tc.url, err)
		}
	}
	t.Setenv(EnvEndpointS3, "http://from-env:9000")
	b, err := Open(context.Background(), "s3://b/p", Options{})
	if err != nil || !strings.Contains(b.String(), "http://from-env:9000") {
		t.Errorf("endpoint from %s: %v, %v", EnvEndpointS3, b, err)
	}
}

func TestOpenObject(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secretexample")
	dir := t.TempDir()
	for _, tc := range []struct{ url, bucket, key string }{
		{"s3://b/pre/groups/web/current?endpoint=http://127.0.0.1:1&style=path", "s3://b/pre/groups/web/ at http://127.0.0.1:1", "current"},
		{"file://" + dir + "/groups/web/current", "file://" + dir + "/groups/web", "current"},
	} {
		b, key, err := OpenObject(context.Background(), tc.url, Options{})
		if err != nil || b.String() != tc.bucket || key != tc.key {
			t.Errorf("%s: %v %q %v, want %s %q", tc.url, b, key, err, tc.bucket, tc.key)
		}
	}
	if _, _, err := OpenObject(context.Background(), "s3://b/dir/", Options{}); err == nil {
		t.Error("a URL ending with a slash accepted as an object")
	}
}

// An object replaced while it is read is read whole, old or new: a
// published deployment is replaced while node managers and gateways read
// it.
func TestS3GetWhileReplaced(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	b, err := Open(context.Background(), srv.URL("p"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	values := []string{strings.Repeat("a", 1000), strings.Repeat("b", 2000)}
	if err := b.Put(ctx, "current", strings.NewReader(values[0])); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ctx.Err() == nil; i++ {
			b.Put(ctx, "current", strings.NewReader(values[i%2]))
		}
	}()
	defer func() { cancel(); <-done }()
	for range 200 {
		r, err := b.Get(context.Background(), "current")
		if err != nil {
			t.Fatalf("get while replaced: %v", err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || (string(got) != values[0] && string(got) != values[1]) {
			t.Fatalf("read while replaced: %d bytes, %v", len(got), err)
		}
	}
}
