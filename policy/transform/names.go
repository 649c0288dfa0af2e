package transform

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// reservedHeaders are the headers the gateway writes itself, or that
// frame the connection or the body: an edit of them would either be
// overwritten or corrupt the exchange. The value says why, for the error.
var reservedHeaders = map[string]string{
	"connection":          "a hop-by-hop header, managed by the gateway",
	"keep-alive":          "a hop-by-hop header, managed by the gateway",
	"proxy-connection":    "a hop-by-hop header, managed by the gateway",
	"proxy-authenticate":  "a hop-by-hop header, managed by the gateway",
	"proxy-authorization": "a hop-by-hop header, managed by the gateway",
	"te":                  "a hop-by-hop header, managed by the gateway",
	"trailer":             "a hop-by-hop header, managed by the gateway",
	"transfer-encoding":   "a hop-by-hop header, managed by the gateway",
	"upgrade":             "a hop-by-hop header, managed by the gateway",
	"content-length":      "set by the gateway from the body",
	"host":                "set with proxy-rewrite's host",
	"x-request-id":        "set by the gateway; use the request-id policy",
}

// reservedRequestHeaders are reserved on the request only: the gateway
// writes them for the upstream.
var reservedRequestHeaders = map[string]string{
	"x-forwarded-for":   "set by the gateway",
	"x-forwarded-proto": "set by the gateway",
	"x-forwarded-host":  "set by the gateway",
}

// checkHeaderName returns why name cannot be edited, "" when it can.
// request says whether the edit is of the request the upstream receives.
func checkHeaderName(name string, request bool) string {
	if !httpascii.IsToken(name) {
		return fmt.Sprintf("%q is not a valid header name", name)
	}
	lower := strings.ToLower(name)
	why, ok := reservedHeaders[lower]
	if !ok && request {
		why, ok = reservedRequestHeaders[lower]
	}
	if ok {
		return fmt.Sprintf("%s cannot be edited: %s", name, why)
	}
	return ""
}

// validValue reports whether s may be a header value: no control
// characters but tab, so that a value cannot end the header early.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// stringField reads key as a string; ok is false when it is missing or is
// not a string, which the reader has reported, so that a value of the
// wrong type is not checked again.
func stringField(r *policy.Reader, errs *policy.ConfigErrors, key string) (string, bool) {
	n := len(*errs)
	s := r.String(key, "")
	return s, r.Has(key) && len(*errs) == n
}

// stringsField is stringField for a list of strings; ok is true for a
// list whose items are all strings, empty or not.
func stringsField(r *policy.Reader, errs *policy.ConfigErrors, key string) ([]string, bool) {
	n := len(*errs)
	list := r.Strings(key)
	return list, r.Has(key) && len(*errs) == n
}
