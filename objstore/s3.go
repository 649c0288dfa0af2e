package objstore

import (
	"context"
	"fmt"
	"net/url"
)

// openS3 is filled in by the S3 implementation.
func openS3(ctx context.Context, u *url.URL, opts Options) (Bucket, error) {
	return nil, fmt.Errorf("object storage URL %s: s3 is not available in this build yet", redact(u))
}
