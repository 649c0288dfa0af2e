package backupfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse/objstore"
)

// Stored is a backup as Upload stored it.
type Stored struct {
	Summary
	// Name is the object's key in the bucket.
	Name string
	// Size and SHA256 are the object's, as stored (compressed): what
	// sha256sum of the file prints.
	Size   int64
	SHA256 string
}

// Upload stores the backup body streams as object name of bucket, reading
// it as Read does while it goes: a backup that is cut, edited or of
// another domain fails before the object is complete, so the bucket never
// holds it (objstore.Bucket.Put stores all or nothing).
func Upload(ctx context.Context, bucket objstore.Bucket, name string, body io.Reader, want Expect) (Stored, error) {
	pr, pw := io.Pipe()
	type result struct {
		res Summary
		err error
	}
	verified := make(chan result, 1)
	go func() {
		res, err := Read(pr, want, nil, nil)
		if err == nil {
			// Read stopped at the end of the compressed stream: bytes
			// after it are not part of a backup.
			var extra int64
			if extra, err = io.Copy(io.Discard, pr); err == nil && extra > 0 {
				err = fmt.Errorf("%w: %d bytes after the backup", ErrTampered, extra)
			}
		}
		pr.CloseWithError(cmpErr(err, errors.New("backup verified")))
		verified <- result{res, err}
	}()
	sum := sha256.New()
	v := &verifying{r: io.TeeReader(body, sum), pw: pw, verified: func() error {
		r := <-verified
		verified <- r
		return r.err
	}}
	err := bucket.Put(ctx, name, v)
	pw.CloseWithError(cmpErr(err, io.EOF))
	r := <-verified
	switch {
	case r.err != nil && (err == nil || errors.Is(err, r.err)):
		// The backup was refused, which failed the Put.
		return Stored{}, fmt.Errorf("backup %s refused: %w", name, r.err)
	case err != nil:
		// The Put failed on its own (the location, or the stream being
		// read): the verifier only saw the stream end.
		return Stored{}, fmt.Errorf("store backup %s in %s: %w", name, bucket, err)
	}
	return Stored{Summary: r.res, Name: name, Size: v.n, SHA256: hex.EncodeToString(sum.Sum(nil))}, nil
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// verifying passes what it reads to the verifier, and ends with the
// verifier's error instead of io.EOF when the backup does not verify.
type verifying struct {
	r        io.Reader
	pw       *io.PipeWriter
	n        int64
	verified func() error
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	if n > 0 {
		if _, werr := v.pw.Write(p[:n]); werr != nil {
			return 0, fmt.Errorf("backup refused: %w", werr)
		}
	}
	if errors.Is(err, io.EOF) {
		v.pw.Close()
		if verr := v.verified(); verr != nil {
			return n, verr
		}
	}
	return n, err
}
