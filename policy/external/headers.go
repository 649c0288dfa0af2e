package external

import "strings"

// forbidden are the headers a plugin may not set or remove: they frame
// the message or route it, and the engines own them.
var forbidden = []string{"content-length", "transfer-encoding", "connection", "host", "upgrade", "te", "trailer"}

// checkName reports why a plugin's header name cannot be applied, "" when
// it can.
func checkName(name []byte) string {
	if !isToken(name) {
		return "is not a header name"
	}
	for _, f := range forbidden {
		if equalFold(name, f) {
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

// isToken reports whether s is an RFC 9110 token, what a header name is.
func isToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func equalFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
