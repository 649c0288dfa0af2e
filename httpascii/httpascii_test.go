package httpascii

import (
	"strings"
	"testing"
)

func TestEqualFold(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"Content-Length", "content-length", true},
		{"X-REQUEST-ID", "x-Request-Id", true},
		{"te", "TE", true},
		{"te", "TEE", false},
		{"Host", "Hosts", false},
		{"host", "hosz", false},
		// Equal but for bit 0x20, and not letters.
		{"a^b", "a~b", false},
		{"a@", "a`", false},
		{"a-", "a\r", false},
		// No Unicode folding: the Kelvin sign is three bytes.
		{"k", "\u212a", false},
	} {
		if got := EqualFold(tc.a, tc.b); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := EqualFold([]byte(tc.a), tc.b); got != tc.want {
			t.Errorf("EqualFold([]byte(%q), %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestEqualFoldBytes compares every pair of bytes with what ASCII case
// folding says.
func TestEqualFoldBytes(t *testing.T) {
	lower := func(c byte) byte {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	for x := range 256 {
		for y := range 256 {
			a, b := string([]byte{'-', byte(x)}), string([]byte{'-', byte(y)})
			if got, want := EqualFold(a, b), lower(byte(x)) == lower(byte(y)); got != want {
				t.Fatalf("EqualFold(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
}

func TestIsToken(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"", false},
		{"X-Request-Id", true},
		{"GET", true},
		{"!#$%&'*+-.^_`|~09azAZ", true},
		{"X Request", false},
		{"X:", false},
		{"X\r\n", false},
		{"caf\u00e9", false},
	} {
		if got := IsToken(tc.s); got != tc.want {
			t.Errorf("IsToken(%q) = %v, want %v", tc.s, got, tc.want)
		}
		if got := IsToken([]byte(tc.s)); got != tc.want {
			t.Errorf("IsToken([]byte(%q)) = %v, want %v", tc.s, got, tc.want)
		}
	}
	// Every byte against RFC 9110's other wording: a visible ASCII
	// character that is not a delimiter.
	for c := range 256 {
		want := c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
		if got := IsToken([]byte{byte(c)}); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", []byte{byte(c)}, got, want)
		}
	}
}

func TestASCIIHelpersDoNotAllocate(t *testing.T) {
	name := []byte("x-forwarded-for")
	if n := testing.AllocsPerRun(100, func() {
		_ = EqualFold(name, "X-Forwarded-For") && IsToken(name) && EqualFold("te", "TE")
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
