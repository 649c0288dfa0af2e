package external

import "github.com/gatehouse/gatehouse/httpascii"

// forbidden are the headers a plugin may not set or remove: they frame
// the message or route it, and the engines own them.
var forbidden = []string{"content-length", "transfer-encoding", "connection", "host", "upgrade", "te", "trailer"}

// checkName reports why a plugin's header name cannot be applied, "" when
// it can.
func checkName(name []byte) string {
	if !httpascii.IsToken(name) {
		return "is not a header name"
	}
	for _, f := range forbidden {
		if httpascii.EqualFold(name, f) {
			return "is one the gateway owns"
		}
	}
	return ""
}

// validValue rejects the bytes that would split or end a header line.
func validValue(v []byte) bool {
	for _, b := range v {
		if b == '\r' || b == '\n' || b == 0 {
			return false
		}
	}
	return true
}
