package client

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// bodyConsumer, as the out of a request, reads the answer's body as it
// comes instead of decoding it.
type bodyConsumer func(h http.Header, body io.Reader) error

// Backup asks the admin node for a backup of the domain and passes its
// body, as it streams in, to consume, with the backup's name. An error
// from consume, or a connection the admin node cut (a backup that failed
// under way), is returned.
func (c *Client) Backup(ctx context.Context, consume func(name string, body io.Reader) error) error {
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/backup"}, bodyConsumer(func(h http.Header, body io.Reader) error {
		_, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
		if err != nil || params["filename"] == "" {
			return fmt.Errorf("the answer names no backup (Content-Disposition %q)", h.Get("Content-Disposition"))
		}
		return consume(params["filename"], body)
	}))
	return err
}
