package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// ErrNotExist is returned, wrapped, by Get and Delete for a missing key.
var ErrNotExist = errors.New("object does not exist")

// Object describes one stored object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Bucket is a flat namespace of objects under slash-separated keys,
// relative to the prefix the bucket was opened with.
type Bucket interface {
	// Put stores the whole of r under key. A reader never sees a partly
	// written object: it sees the old one, or none, until Put returns.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens the object stored under key.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the object; a missing one is ErrNotExist.
	Delete(ctx context.Context, key string) error
	// String names the bucket for logs and errors, without credentials.
	String() string
}

// Options are what opening a bucket may need beyond its URL. Credentials
// are never part of the URL: they come from the environment or a file.
type Options struct {
	// CredentialsFile, when set, is read for S3 credentials instead of
	// the environment (an AWS shared credentials file; see
	// docs/object-storage.md).
	CredentialsFile string
	// Transport, when set, carries the S3 requests instead of a default
	// HTTP transport: tests use it to reach virtual-host names on
	// loopback.
	Transport http.RoundTripper
}

// Open returns the bucket a URL names: file:///abs/dir or
// s3://bucket/prefix[?endpoint=URL&region=R&style=path|virtual] (see
// docs/object-storage.md).
func Open(ctx context.Context, raw string, opts Options) (Bucket, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("object storage URL: %w", err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("object storage URL %s: credentials do not belong in the URL; use the environment or a credentials file", redact(u))
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("object storage URL %s: a file URL names a local directory (file:///path)", raw)
		}
		return OpenDir(u.Path)
	case "s3":
		b, err := openS3(ctx, u, opts)
		if err != nil {
			return nil, err
		}
		return b, nil
	case "":
		return nil, fmt.Errorf("object storage URL %q: give a scheme, file:///path or s3://bucket/prefix", raw)
	default:
		return nil, fmt.Errorf("object storage URL %s: unknown scheme %q (file or s3)", redact(u), u.Scheme)
	}
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// checkKey refuses keys that could escape the bucket's prefix or that
// name no object.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("object key %q: must be a relative name", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("object key %q: empty, . or .. segment", key)
		}
	}
	return nil
}

// OpenObject opens the bucket holding the object a URL names, and
// returns the object's key in it: s3://bucket/prefix/groups/web/current
// is the key "current" of the bucket s3://bucket/prefix/groups/web.
func OpenObject(ctx context.Context, raw string, opts Options) (Bucket, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("object URL: %w", err)
	}
	dir, key := path.Split(u.Path)
	if key == "" {
		return nil, "", fmt.Errorf("object URL %s: names no object (it ends with a slash or has no path)", redact(u))
	}
	u.Path = dir
	u.RawPath = ""
	b, err := Open(ctx, u.String(), opts)
	if err != nil {
		return nil, "", err
	}
	return b, key, nil
}
