package auth

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

const (
	// DefaultPasswordCost is the bcrypt cost of stored passwords: about a
	// quarter of a second per check on current hardware, cheap for one login
	// and expensive for an offline guesser.
	DefaultPasswordCost = 12

	// MinPasswordLength is the shortest password accepted, in characters.
	MinPasswordLength = 12
	// MaxPasswordBytes is bcrypt's limit: it ignores every byte after it.
	MaxPasswordBytes = 72

	// generatedLength and generatedAlphabet make passwords that survive
	// being read aloud or copied from a terminal: no 0/O/o, 1/l/I. 24
	// characters from 56 give about 139 bits.
	generatedLength   = 24
	generatedAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

	// unknownUserHash is a bcrypt hash at DefaultPasswordCost of a password
	// nobody uses. It is a constant, not computed at start, so that even the
	// first login for an unknown user costs one bcrypt check and no more; a
	// test keeps its cost equal to DefaultPasswordCost.
	unknownUserHash = "$2a$12$X4UR7kEYdJTjAukigN.z5evBfu7qESOALIheouKzZBHQOlhTVkA7i"
)

var errPasswordTooLong = fmt.Errorf("password must be at most %d bytes (bcrypt ignores the rest)", MaxPasswordBytes)

// HashPassword returns the bcrypt hash of password at the given cost.
// Passwords longer than MaxPasswordBytes are refused rather than truncated.
func HashPassword(password string, cost int) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", fmt.Errorf("hash password: %w", errPasswordTooLong)
	}
	// bcrypt silently replaces a cost below its minimum by its default;
	// a caller asking for cost 0 has a bug that should show.
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("hash password: cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether password matches the bcrypt hash.
func CheckPassword(hash, password string) bool {
	return compare(hash, password)
}

// CheckUnknownUser spends the time of a CheckPassword at DefaultPasswordCost
// and throws the result away. The login handler calls it when the user does
// not exist, so that the answer takes as long as for a wrong password.
func CheckUnknownUser(password string) {
	compare(unknownUserHash, password)
}

// compare is shared by CheckPassword and CheckUnknownUser so that both take
// the same path, including the early refusal of over-long passwords: bcrypt
// would otherwise compare only their first 72 bytes and accept a password
// that merely starts with the right one.
func compare(hash, password string) bool {
	if len(password) > MaxPasswordBytes {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// ValidatePassword applies the password policy to a password an operator
// chooses: at least MinPasswordLength characters and at most
// MaxPasswordBytes bytes. Length is the one rule that measurably helps;
// composition rules mostly produce predictable passwords.
func ValidatePassword(password string) error {
	if n := utf8.RuneCountInString(password); n < MinPasswordLength {
		return fmt.Errorf("password must be at least %d characters (got %d)", MinPasswordLength, n)
	}
	if len(password) > MaxPasswordBytes {
		return errPasswordTooLong
	}
	return nil
}

// GeneratePassword returns a random password of 24 characters from an
// alphabet without look-alike characters, for the first administrator
// created by `admin init`.
func GeneratePassword() (string, error) {
	alphabet := big.NewInt(int64(len(generatedAlphabet)))
	b := make([]byte, generatedLength)
	for i := range b {
		n, err := rand.Int(rand.Reader, alphabet)
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		b[i] = generatedAlphabet[n.Int64()]
	}
	return string(b), nil
}
