package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// apiError is an error with the HTTP answer it deserves.
type apiError struct {
	status int
	body   apitypes.Error
}

func (e *apiError) Error() string {
	if e.body.Field != "" && !strings.HasPrefix(e.body.Message, e.body.Field+": ") {
		return e.body.Field + ": " + e.body.Message
	}
	return e.body.Message
}

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, body: apitypes.Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

func badRequest(field, format string, args ...any) *apiError {
	e := newError(http.StatusBadRequest, apitypes.CodeBadRequest, format, args...)
	e.body.Field = field
	return e
}

func unauthorized(format string, args ...any) *apiError {
	return newError(http.StatusUnauthorized, apitypes.CodeUnauthorized, format, args...)
}

// forbidden says nothing of the object: a caller without the permission
// must not learn whether it exists.
func forbidden(perm string) *apiError {
	return newError(http.StatusForbidden, apitypes.CodeForbidden, "permission %s required", perm)
}

func notFound(format string, args ...any) *apiError {
	return newError(http.StatusNotFound, apitypes.CodeNotFound, format, args...)
}

func conflict(format string, args ...any) *apiError {
	return newError(http.StatusConflict, apitypes.CodeConflict, format, args...)
}

// invalidConfig lists every error of a configuration with its field path.
func invalidConfig(errs deploy.Errors) *apiError {
	e := newError(http.StatusUnprocessableEntity, apitypes.CodeInvalidConfig, "configuration has %d error(s)", len(errs))
	if len(errs) == 1 {
		e.body.Message = "configuration is invalid: " + errs[0].Error()
	}
	e.body.Errors = fieldErrors(errs)
	if len(errs) > 0 {
		e.body.Field = errs[0].Path
	}
	return e
}

func fieldErrors(errs deploy.Errors) []apitypes.FieldError {
	out := make([]apitypes.FieldError, len(errs))
	for i, fe := range errs {
		out[i] = apitypes.FieldError{Field: fe.Path, Message: fe.Message}
	}
	return out
}

// asAPIError turns any handler error into the answer to send. Store errors
// map to their statuses with the store's message (which names the object,
// never a secret); anything else is an internal error whose detail stays
// in the log.
func asAPIError(err error) (e *apiError, internal bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, false
	}
	var verrs deploy.Errors
	if errors.As(err, &verrs) {
		return invalidConfig(verrs), false
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return newError(http.StatusRequestEntityTooLarge, apitypes.CodeTooLarge, "request body is larger than %d bytes", maxErr.Limit), false
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("%v", err), false
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInUse):
		return conflict("%v", err), false
	case errors.Is(err, store.ErrInvalid):
		return badRequest("", "%v", err), false
	}
	return newError(http.StatusInternalServerError, apitypes.CodeInternal, "internal error"), true
}

// pingTimeout bounds the check that tells an unreachable database from an
// internal error, so that a database that stopped answering (rather than
// refusing) does not hold the answer long.
const pingTimeout = 2 * time.Second

// storeAway reports whether the store is a database that does not answer
// now: a request that failed then failed because of it. A transaction
// that did not reach its commit left nothing behind, so the answer can
// say that nothing was changed.
func (s *Server) storeAway(ctx context.Context) bool {
	p, ok := s.store.(store.Pinger)
	if !ok || ctx.Err() != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pingTimeout)
	defer cancel()
	return p.Ping(ctx) != nil
}

func storeUnavailable() *apiError {
	return newError(http.StatusServiceUnavailable, apitypes.CodeUnavailable,
		"this admin node cannot reach the domain's database: retry shortly, here or through another admin node")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError, requestID string) {
	body := e.body
	body.RequestID = requestID
	writeJSON(w, e.status, apitypes.ErrorBody{Error: body})
}

func (e *apiError) withField(field string) *apiError {
	e.body.Field = field
	return e
}
