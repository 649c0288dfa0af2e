package placeholder

import (
	"fmt"
	"strings"
	"testing"
)

// show writes each placeholder as <NAME>, <NAME|default> or <secret:NAME>.
func show(sp spec) string {
	switch {
	case sp.secret:
		return "<secret:" + sp.name + ">"
	case sp.hasDefault:
		return "<" + sp.name + "|" + sp.def + ">"
	}
	return "<" + sp.name + ">"
}

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"", ""},
		{"plain text", "plain text"},
		{"${A}", "<A>"},
		{"${ORDERS_HOST}:8080", "<ORDERS_HOST>:8080"},
		{"10.0.0.5:${PORT}", "10.0.0.5:<PORT>"},
		{"a${A}b${B_2}c${A}", "a<A>b<B_2>c<A>"},
		{"${A:-x}", "<A|x>"},
		{"${A:-}", "<A|>"},
		{"${A:-a:-b $ {}", "<A|a:-b $ {>"},
		{"${A:-${B}", "<A|${B>"},
		{"${secret:DB_PASSWORD}", "<secret:DB_PASSWORD>"},
		{"Bearer ${secret:TOKEN}", "Bearer <secret:TOKEN>"},
		// Escapes are read first, left to right.
		{"$${A}", "${A}"},
		{"$${", "${"},
		{"$$${A}", "$${A}"},
		{"$${A}${B}", "${A}<B>"},
		// What is not "${" or "$${" is text.
		{"$", "$"},
		{"$A", "$A"},
		{"a$b$", "a$b$"},
		{"$$", "$$"},
		{"/orders/{id}", "/orders/{id}"},
		{"{}}{", "{}}{"},
		{"$ {A}", "$ {A}"},
		{"é${A}ü", "é<A>ü"},
	} {
		got, err := expand(tc.in, show)
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestExpandMalformed(t *testing.T) {
	const (
		unclosed = `"${" without a closing "}"`
		badName  = `a name is 1 to 128 upper-case letters, digits or "_", starting with a letter`
		noName   = "no name"
		secretDf = "a secret has no default"
		colon    = `a default is written ${NAME:-default}; a secret ${secret:NAME}`
	)
	for _, tc := range []struct {
		in   string
		at   int
		want string
	}{
		{"${", 1, unclosed},
		{"${A", 1, unclosed},
		{"ok ${A} then ${B", 14, unclosed},
		{"${}", 1, noName},
		{"${:-x}", 1, noName},
		{"${secret:}", 1, noName},
		{"${lower}", 1, badName},
		{"${Mixed}", 1, badName},
		{"${1A}", 1, badName},
		{"${_A}", 1, badName},
		{"${A-B}", 1, badName},
		{"${ A}", 1, badName},
		{"${" + strings.Repeat("A", 129) + "}", 1, badName},
		{"${secret:lower}", 1, badName},
		{"${secret:A:-x}", 1, secretDf},
		{"${secret:A:x}", 1, secretDf},
		{"${A:x}", 1, colon},
		{"${SECRET:A}", 1, colon},
		{"é${a}", 2, badName},
		{"$${A}${b}", 6, badName},
	} {
		_, err := expand(tc.in, show)
		want := fmt.Sprintf("malformed placeholder at character %d: %s", tc.at, tc.want)
		if err == nil || err.Error() != want {
			t.Errorf("expand(%q) error = %v; want %q", tc.in, err, want)
		}
	}
}

func TestValidName(t *testing.T) {
	valid := []string{"A", "UPSTREAM_ORDERS", "A1_B2", "A_", strings.Repeat("A", 128)}
	invalid := []string{"", "a", "_A", "1A", "A-B", "A.B", "Ä", "A B", strings.Repeat("A", 129)}
	for _, name := range valid {
		if !ValidName(name) {
			t.Errorf("ValidName(%q) = false", name)
		}
	}
	for _, name := range invalid {
		if ValidName(name) {
			t.Errorf("ValidName(%q) = true", name)
		}
	}
}

func TestIsSecretPlaceholder(t *testing.T) {
	for s, want := range map[string]bool{
		"${secret:A}": true, "${secret:DB_PASSWORD}": true,
		"${A}": false, "x${secret:A}": false, "${secret:A}x": false,
		"${secret:A}${secret:B}": false, "${secret:a}": false, "$${secret:A}": false,
		"${secret:}": false, "literal": false,
	} {
		if got := isSecretPlaceholder(s); got != want {
			t.Errorf("isSecretPlaceholder(%q) = %v, want %v", s, got, want)
		}
	}
}

// escapeText is the inverse of expand for text without placeholders.
func escapeText(s string) string {
	return strings.ReplaceAll(s, open, escape)
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "${A}", "$${A}", "${A:-x}", "${secret:B}", "a${", "$$${A}", "${lower}", "/o/{id}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Whatever s is, expand ends, and only hands out valid names.
		got, err := expand(s, func(sp spec) string {
			if !ValidName(sp.name) || (sp.secret && sp.hasDefault) {
				t.Fatalf("expand(%q) read placeholder %+v", s, sp)
			}
			return ""
		})
		if err == nil && !strings.Contains(s, open) && got != s {
			t.Fatalf("expand(%q) = %q, changed text without placeholders", s, got)
		}
		// Escaping any text gives it back, without placeholders.
		back, err := expand(escapeText(s), func(sp spec) string {
			t.Fatalf("expand(%q) found a placeholder in escaped text", escapeText(s))
			return ""
		})
		if err != nil || back != s {
			t.Fatalf("expand(escapeText(%q)) = %q, %v", s, back, err)
		}
	})
}
