package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestNewTokenRoundTrip(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.ID) != 16 || len(tok.Secret) != 43 || tok.Bearer != "gh_"+tok.ID+"_"+tok.Secret {
		t.Fatalf("token shape: %+v", tok)
	}
	id, secret, err := ParseBearer(tok.Bearer)
	if err != nil || id != tok.ID || secret != tok.Secret {
		t.Fatalf("ParseBearer = %q, %q, %v; want %q, %q", id, secret, err, tok.ID, tok.Secret)
	}
	other, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == tok.ID || other.Secret == tok.Secret {
		t.Fatal("two tokens share an id or secret")
	}
}

func TestParseBearer(t *testing.T) {
	const (
		id = "0123456789abcdef"
		// 32 bytes; the last character carries two zero bits.
		secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
		// Valid base64url may hold - and _, even at the start.
		underscored = "_-ECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	)
	for _, tc := range []struct {
		name   string
		bearer string
		ok     bool
	}{
		{"good", "gh_" + id + "_" + secret, true},
		{"good, _ and - in the secret", "gh_" + id + "_" + underscored, true},
		{"empty", "", false},
		{"wrong prefix", "gx_" + id + "_" + secret, false},
		{"upper-case prefix", "GH_" + id + "_" + secret, false},
		{"no prefix", "ab_" + id + "_" + secret, false},
		{"Bearer scheme left in", "Bearer gh_" + id + "_" + secret, false},
		{"short id", "gh_" + id[1:] + "_" + secret + "A", false},
		{"long id", "gh_" + id + "0_" + secret[1:], false},
		{"short secret", "gh_" + id + "_" + secret[1:], false},
		{"long secret", "gh_" + id + "_" + secret + "A", false},
		{"upper-case hex id", "gh_0123456789ABCDEF_" + secret, false},
		{"non-hex id", "gh_0123456789abcdeg_" + secret, false},
		{"padded secret", "gh_" + id + "_" + secret[:42] + "=", false},
		{"standard base64 in secret", "gh_" + id + "_+" + secret[1:], false},
		{"non-zero trailing bits", "gh_" + id + "_" + secret[:42] + "9", false},
		{"extra underscore after prefix", "gh__" + id + "_" + secret[1:], false},
		{"extra underscore after id", "gh_" + id + "__" + secret, false},
		{"underscore in id", "gh_01234567_9abcdef_" + secret, false},
		{"missing separator", "gh_" + id + "A" + secret, false},
		{"trailing newline", "gh_" + id + "_" + secret + "\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotID, gotSecret, err := ParseBearer(tc.bearer)
			if !tc.ok {
				if !errors.Is(err, ErrMalformedToken) {
					t.Fatalf("err = %v, want ErrMalformedToken", err)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error quotes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gotID != id || gotSecret != tc.bearer[20:] {
				t.Errorf("got %q, %q", gotID, gotSecret)
			}
		})
	}
}

func TestSecretHash(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	hash := HashSecret(tok.Secret)
	if !strings.HasPrefix(hash, "sha256:") || len(hash) != len("sha256:")+64 {
		t.Fatalf("HashSecret = %q", hash)
	}
	for _, tc := range []struct {
		name   string
		hash   string
		secret string
		want   bool
	}{
		{"right secret", hash, tok.Secret, true},
		{"wrong secret", hash, tok.Secret[1:] + "A", false},
		{"empty secret", hash, "", false},
		{"hash without prefix", strings.TrimPrefix(hash, "sha256:"), tok.Secret, false},
		{"empty hash", "", tok.Secret, false},
		// Known answer, so a change of the stored form cannot go unnoticed.
		{"known answer", "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "hello", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SecretMatches(tc.hash, tc.secret); got != tc.want {
				t.Errorf("SecretMatches = %v, want %v", got, tc.want)
			}
		})
	}
}
