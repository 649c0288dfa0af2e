package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables read for S3 buckets besides the credentials'
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), with the names the AWS tools
// give them, so that one environment serves both.
const (
	EnvEndpointS3    = "AWS_ENDPOINT_URL_S3"
	EnvEndpoint      = "AWS_ENDPOINT_URL"
	EnvRegion        = "AWS_REGION"
	EnvDefaultRegion = "AWS_DEFAULT_REGION"
)

// defaultPartSize is the size of the parts of a multipart upload, and so
// the memory one Put holds: 16 MiB parts allow objects up to 160 GiB in
// S3's 10,000 parts.
const defaultPartSize = 16 << 20

// S3 is a bucket of an S3-protocol service (AWS S3, MinIO, Ceph, GCS's
// interoperability API), under a key prefix.
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ending in "/"
	name     string
	partSize int
	// secrets are the credential values this bucket signs with, scrubbed
	// from every error it returns: the library's errors do not quote
	// them, but an error of a credential source or a proxy might.
	secrets []string
}

// s3Params are where an S3 bucket is and how to address it.
type s3Params struct {
	endpoint string // scheme://host[:port]
	region   string
	style    minio.BucketLookupType
}

// parseS3 reads the query parameters of an s3:// URL, falling back to
// the environment.
func parseS3(u *url.URL) (bucket, prefix string, p s3Params, err error) {
	name := redact(u)
	bucket = u.Host
	if bucket == "" {
		return "", "", p, fmt.Errorf("object storage URL %s: no bucket (s3://bucket/prefix)", name)
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := checkKey(prefix); err != nil {
			return "", "", p, fmt.Errorf("object storage URL %s: prefix: %w", name, err)
		}
		prefix += "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "style":
		default:
			return "", "", p, fmt.Errorf("object storage URL %s: unknown parameter %q (endpoint, region, style)", name, k)
		}
	}
	endpoint := firstOf(q.Get("endpoint"), os.Getenv(EnvEndpointS3), os.Getenv(EnvEndpoint), "https://s3.amazonaws.com")
	if p.endpoint, err = parseEndpoint(endpoint); err != nil {
		return "", "", p, fmt.Errorf("object storage URL %s: endpoint: %w", name, err)
	}
	p.region = firstOf(q.Get("region"), os.Getenv(EnvRegion), os.Getenv(EnvDefaultRegion))
	switch style := q.Get("style"); style {
	case "", "auto":
		p.style = minio.BucketLookupAuto
	case "path":
		p.style = minio.BucketLookupPath
	case "virtual":
		p.style = minio.BucketLookupDNS
	default:
		return "", "", p, fmt.Errorf("object storage URL %s: style %q: path, virtual or auto", name, style)
	}
	return bucket, prefix, p, nil
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// parseEndpoint accepts http://host[:port], https://host[:port] or a bare
// host[:port] (HTTPS).
func parseEndpoint(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	e, err := url.Parse(s)
	if err != nil {
		return "", errors.New("not a URL")
	}
	switch {
	case e.User != nil:
		return "", errors.New("credentials do not belong in the endpoint; use the environment or a credentials file")
	case e.Scheme != "http" && e.Scheme != "https":
		return "", fmt.Errorf("scheme %q: http or https", e.Scheme)
	case e.Host == "":
		return "", errors.New("no host")
	case strings.Trim(e.Path, "/") != "" || e.RawQuery != "":
		return "", fmt.Errorf("%s: an endpoint is a scheme and a host, without a path", e.Redacted())
	}
	return e.Scheme + "://" + e.Host, nil
}

// s3Credentials returns where the credentials come from: the file of
// opts alone when given, else the environment, then the AWS shared
// credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
// profile AWS_PROFILE or default). They are read once here, so that a
// missing or unreadable source fails Open rather than the first request.
func s3Credentials(opts Options) (*credentials.Credentials, credentials.Value, error) {
	var c *credentials.Credentials
	if opts.CredentialsFile != "" {
		if _, err := os.Stat(opts.CredentialsFile); err != nil {
			return nil, credentials.Value{}, fmt.Errorf("S3 credentials file: %w", err)
		}
		c = credentials.New(&credentials.FileAWSCredentials{Filename: opts.CredentialsFile})
	} else {
		c = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
		})
	}
	v, err := c.Get()
	if err != nil {
		// The parser's error may quote a line of the file, secret and
		// all, so it is not passed on.
		return nil, v, fmt.Errorf("S3 credentials file %s: unreadable, or no complete aws_access_key_id and aws_secret_access_key in profile %s",
			opts.CredentialsFile, firstOf(os.Getenv("AWS_PROFILE"), "default"))
	}
	if v.AccessKeyID == "" || v.SecretAccessKey == "" {
		if opts.CredentialsFile != "" {
			return nil, v, fmt.Errorf("S3 credentials file %s: no aws_access_key_id and aws_secret_access_key in profile %s",
				opts.CredentialsFile, firstOf(os.Getenv("AWS_PROFILE"), "default"))
		}
		return nil, v, errors.New("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give them in the AWS shared credentials file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials)")
	}
	return c, v, nil
}

// openS3 returns the bucket of an s3://bucket/prefix URL. Nothing is
// asked of the service yet: a bucket that does not exist or refuses the
// credentials fails the first call.
func openS3(_ context.Context, u *url.URL, opts Options) (*S3, error) {
	bucket, prefix, p, err := parseS3(u)
	if err != nil {
		return nil, err
	}
	creds, v, err := s3Credentials(opts)
	if err != nil {
		return nil, fmt.Errorf("object storage %s: %w", redact(u), err)
	}
	e, _ := url.Parse(p.endpoint)
	client, err := minio.New(e.Host, &minio.Options{
		Creds:        creds,
		Secure:       e.Scheme == "https",
		Region:       p.region,
		BucketLookup: p.style,
		Transport:    opts.Transport, // nil: the library's default
	})
	if err != nil {
		return nil, fmt.Errorf("object storage %s: %w", redact(u), err)
	}
	name := "s3://" + bucket + "/" + prefix
	if p.endpoint != "https://s3.amazonaws.com" {
		name += " at " + p.endpoint
	}
	s := &S3{client: client, bucket: bucket, prefix: prefix, name: name, partSize: defaultPartSize}
	for _, secret := range []string{v.AccessKeyID, v.SecretAccessKey, v.SessionToken} {
		if secret != "" {
			s.secrets = append(s.secrets, secret)
		}
	}
	return s, nil
}

func (s *S3) String() string { return s.name }

// fail wraps err with the operation and key, with the credentials
// scrubbed and a missing object as ErrNotExist.
func (s *S3) fail(op, key string, err error) error {
	if code := minio.ToErrorResponse(err).Code; code == minio.NoSuchKey {
		return fmt.Errorf("%s %s: %w", op, key, ErrNotExist)
	}
	msg := err.Error()
	scrubbed := false
	for _, secret := range s.secrets {
		if strings.Contains(msg, secret) {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
			scrubbed = true
		}
	}
	if scrubbed {
		return fmt.Errorf("%s %s in %s: %s", op, key, s.name, msg)
	}
	return fmt.Errorf("%s %s in %s: %w", op, key, s.name, err)
}

// Put streams r: an object smaller than a part goes in one request,
// whose body the library can send again when a try fails; a larger one
// is a multipart upload of parts read one at a time, each sent again on
// its own, and invisible to readers until it completes.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) error {
	if err := checkKey(key); err != nil {
		return err
	}
	buf := make([]byte, s.partSize)
	n, err := io.ReadFull(ctxReader{ctx, r}, buf)
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		_, err = s.client.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(buf[:n]), int64(n), opts)
	case err != nil:
		return fmt.Errorf("put %s: %w", key, err)
	default:
		opts.PartSize = uint64(s.partSize)
		rest := io.MultiReader(bytes.NewReader(buf), ctxReader{ctx, r})
		_, err = s.client.PutObject(ctx, s.bucket, s.prefix+key, rest, -1, opts)
	}
	if err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// Get sends one GET at once, so that a missing object is ErrNotExist here
// rather than at the first read, and the body read is the object the
// answer was about: the library's lazy object asks for its metadata
// first and then for the body of that version only, which fails when
// the object is replaced in between, as published deployments are.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	return body, nil
}

func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for info := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if info.Err != nil {
			return nil, s.fail("list", prefix, info.Err)
		}
		out = append(out, Object{Key: strings.TrimPrefix(info.Key, s.prefix), Size: info.Size, Modified: info.LastModified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete asks whether the object exists first: S3 answers a delete of a
// missing key with success.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{}); err != nil {
		return s.fail("delete", key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		return s.fail("delete", key, err)
	}
	return nil
}
