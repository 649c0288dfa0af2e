package httpascii

// EqualFold reports whether a and b are the same, ASCII letters compared
// without regard to case, as HTTP compares header names. Unlike
// strings.EqualFold it folds no other character (no Kelvin sign for k).
func EqualFold[T string | []byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		// Equal but for bit 0x20 is the same letter in another case, and
		// only for letters: '^' and '~' differ by that bit too.
		x, y := a[i]|0x20, b[i]|0x20
		if x != y || (x < 'a' || x > 'z') && a[i] != b[i] {
			return false
		}
	}
	return true
}

// IsToken reports whether s is an HTTP token (RFC 9110, section 5.6.2):
// what a header name and a method are.
func IsToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// tchar holds the bytes a token is made of.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
