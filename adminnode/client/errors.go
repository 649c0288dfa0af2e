package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// maxErrorBody bounds how much of an error answer is read: enough for the
// field errors of any configuration, and a proxy's error page is cut short.
const maxErrorBody = 1 << 20

// APIError is a non-2xx answer of the admin node.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Detail is the answer's error body. When the answer was not one (a
	// proxy's error page), Code is empty and Message holds the start of
	// the body.
	Detail apitypes.Error
	// RetryAfter is how long a 429 asks to wait, 0 if it does not say.
	RetryAfter time.Duration
}

// Error is meant to be shown to a person as it is: the code and message on
// the first line, then one line per field error, e.g.
//
//	invalid_config: configuration has 2 errors
//	  services[0].routes[0].paths[0]: must start with "/"
//	  upstreams[0].targets: must not be empty
//
// The request ID is added for server errors only, where it is what an
// operator looks for in the admin node's log.
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Detail.Code == "" {
		fmt.Fprintf(&b, "HTTP %d %s", e.Status, http.StatusText(e.Status))
		if e.Detail.Message != "" {
			b.WriteString(": " + e.Detail.Message)
		}
	} else {
		b.WriteString(e.Detail.Code + ": " + e.Detail.Message)
	}
	if e.Detail.Field != "" && len(e.Detail.Errors) == 0 {
		fmt.Fprintf(&b, " (field %s)", e.Detail.Field)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry in %s)", e.RetryAfter)
	}
	if e.Status >= 500 && e.Detail.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.Detail.RequestID)
	}
	for _, fe := range e.Detail.Errors {
		line := fe.Message
		if fe.Field != "" {
			line = fe.Field + ": " + line
		}
		// The message of a single error may already be that error.
		if strings.Contains(e.Detail.Message, line) {
			continue
		}
		b.WriteString("\n  " + line)
		if fe.Line > 0 {
			fmt.Fprintf(&b, " (line %d)", fe.Line)
		}
	}
	return b.String()
}

// IsStatus reports whether err is, or wraps, an APIError with the status
// code.
func IsStatus(err error, code int) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == code
}

func newAPIError(resp *http.Response) *APIError {
	e := &APIError{Status: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		e.Detail.Message = fmt.Sprintf("reading the error body: %v", err)
		return e
	}
	var body apitypes.ErrorBody
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Detail = body.Error
		return e
	}
	// Not an error of the API: keep a line of it for the reader.
	msg, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "…"
	}
	e.Detail.Message = msg
	return e
}
