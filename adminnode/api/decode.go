package api

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/deploy"
)

func readBody(q *request) ([]byte, error) {
	if q.r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(q.r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, err
		}
		return nil, badRequest("", "read request body: %v", err)
	}
	return data, nil
}

// decodeJSON decodes a JSON body into v strictly: unknown fields and
// trailing data are errors naming what is wrong, because a misspelt field
// silently ignored is a change the caller believes made.
func decodeJSON(q *request, v any) error {
	data, err := readBody(q)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("", "request body is empty: a JSON object is required")
	}
	return decodeJSONBytes(data, v)
}

func decodeJSONBytes(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return badRequest("", "request body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return badRequest(typeErr.Field, "%s: must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return badRequest("", "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(name, "unknown field %q", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "malformed JSON: unexpected end of body")
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return err
	}
	return badRequest("", "malformed JSON: %v", err)
}

func encodePublicKey(pub []byte) string {
	if len(pub) != ed25519.PublicKeySize {
		return ""
	}
	return deploy.EncodePublicKey(ed25519.PublicKey(pub))
}

func keyFingerprint(pub []byte) string {
	if len(pub) != ed25519.PublicKeySize {
		return ""
	}
	return deploy.KeyFingerprint(ed25519.PublicKey(pub))
}

// parseNumber reads a deployment number from the path; "latest" is the
// group's current deployment, resolved by the caller.
func parseNumber(field, s string) (uint64, error) {
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil || n == 0 || fmt.Sprint(n) != s {
		return 0, badRequest(field, "%s must be a deployment number or \"latest\", not %q", field, s)
	}
	return n, nil
}
