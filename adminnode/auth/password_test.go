package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// testCost keeps the tests fast; the cost does not change what is checked.
const testCost = bcrypt.MinCost

func TestHashAndCheckPassword(t *testing.T) {
	const good = "correct horse battery"
	hash, err := HashPassword(good, testCost)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != testCost {
		t.Fatalf("cost = %d, %v; want %d", cost, err, testCost)
	}
	long72 := strings.Repeat("a", MaxPasswordBytes)
	longHash, err := HashPassword(long72, testCost)
	if err != nil {
		t.Fatalf("72-byte password: %v", err)
	}
	for _, tc := range []struct {
		name     string
		hash     string
		password string
		want     bool
	}{
		{"right password", hash, good, true},
		{"wrong password", hash, "correct horse battery!", false},
		{"empty password", hash, "", false},
		{"72 bytes", longHash, long72, true},
		// bcrypt would compare only the first 72 bytes and accept this.
		{"72 right bytes and one more", longHash, long72 + "b", false},
		{"not a hash", "plaintext", "plaintext", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckPassword(tc.hash, tc.password); got != tc.want {
				t.Errorf("CheckPassword = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		password string
		cost     int
		wantErr  string
	}{
		{"73 bytes", strings.Repeat("a", 73), testCost, "at most 72 bytes"},
		{"72 bytes in 3-byte runes plus one", strings.Repeat("€", 24) + "a", testCost, "at most 72 bytes"},
		{"cost below bcrypt's minimum", "long enough password", bcrypt.MinCost - 1, "cost 3 outside"},
		{"cost above bcrypt's maximum", "long enough password", bcrypt.MaxCost + 1, "cost 32 outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := HashPassword(tc.password, tc.cost)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		name     string
		password string
		wantErr  string // "" for valid
	}{
		{"empty", "", "at least 12 characters"},
		{"11 characters", "abcdefghijk", "at least 12 characters"},
		{"12 characters", "abcdefghijkl", ""},
		{"12 multi-byte characters", strings.Repeat("é", 12), ""},
		{"11 multi-byte characters, 22 bytes", strings.Repeat("é", 11), "at least 12 characters"},
		{"72 bytes", strings.Repeat("a", 72), ""},
		{"73 bytes", strings.Repeat("a", 73), "at most 72 bytes"},
		{"25 three-byte characters", strings.Repeat("€", 25), "at most 72 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePassword(tc.password)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != generatedLength {
			t.Fatalf("%q: length %d, want %d", p, len(p), generatedLength)
		}
		if strings.Trim(p, generatedAlphabet) != "" {
			t.Fatalf("%q: characters outside the alphabet", p)
		}
		if err := ValidatePassword(p); err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		if seen[p] {
			t.Fatalf("%q generated twice", p)
		}
		seen[p] = true
	}
	if strings.ContainsAny(generatedAlphabet, "0O1lI") {
		t.Error("alphabet holds look-alike characters")
	}
}

func TestUnknownUserHash(t *testing.T) {
	// The dummy check must cost what a real check of a default-cost hash
	// costs, or its timing would give unknown users away.
	cost, err := bcrypt.Cost([]byte(unknownUserHash))
	if err != nil || cost != DefaultPasswordCost {
		t.Fatalf("unknownUserHash cost = %d, %v; want %d", cost, err, DefaultPasswordCost)
	}
	// Over-long passwords take the same early refusal as in CheckPassword.
	CheckUnknownUser(strings.Repeat("a", 100))
	if raceEnabled {
		t.Skip("a cost-12 check takes seconds under the race detector")
	}
	CheckUnknownUser("some password")
}
