package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// apiError is an answer of the API other than 2xx.
type apiError struct {
	status int
	body   apitypes.Error
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.body.Code, e.body.Message)
}

// response keeps what the API's handler writes.
type response struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// call runs one API request in process on behalf of the console's caller
// r: same TCP peer (the login rate limiter and the audit log's source),
// same context, bearer as its token ("" for none). in is sent as JSON when
// not nil; a 2xx answer is decoded into out when not nil.
func (c *Console) call(r *http.Request, bearer, method, path string, in, out any) error {
	var body bytes.Buffer
	header := http.Header{}
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		header.Set("Content-Type", "application/json")
	}
	return c.send(r, bearer, method, path, header, body.Bytes(), out)
}

// send is call with a body as it is (a configuration document) and the
// request's headers.
func (c *Console) send(r *http.Request, bearer, method, path string, header http.Header, body []byte, out any) error {
	w, err := c.do(r, bearer, method, path, header, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if out != nil && w.status != http.StatusNoContent {
		if err := json.Unmarshal(w.body.Bytes(), out); err != nil {
			return fmt.Errorf("decode the answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// do runs one API request, its body read from body as the API reads it
// (an uploaded release streams through), and answers what the API wrote:
// an *apiError when that is not a 2xx answer.
func (c *Console) do(r *http.Request, bearer, method, path string, header http.Header, body io.Reader) (*response, error) {
	req, err := http.NewRequestWithContext(r.Context(), method, apitypes.Prefix+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.RemoteAddr = r.RemoteAddr
	req.Header = header
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := &response{header: http.Header{}}
	c.api.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 300 {
		var b apitypes.ErrorBody
		if err := json.Unmarshal(w.body.Bytes(), &b); err != nil || b.Error.Message == "" {
			b.Error.Message = http.StatusText(w.status)
		}
		return nil, &apiError{status: w.status, body: b.Error}
	}
	return w, nil
}
