package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/gatehouse/gatehouse/policy"
)

// algorithm is a JWT signing algorithm jwt-auth verifies; as bits, a set.
type algorithm uint8

const (
	algHS256 algorithm = 1 << iota
	algRS256
	algES256
)

// algorithms maps the JWT "alg" names to what jwt-auth verifies. "none"
// and every other name are refused.
var algorithms = map[string]algorithm{"HS256": algHS256, "RS256": algRS256, "ES256": algES256}

// jwtKey is one consumer's verification key. Its algorithm follows from
// the secret's form, never from the token, so that a token cannot have
// an RSA public key used as an HMAC secret.
type jwtKey struct {
	consumer *policy.Consumer
	alg      algorithm
	secret   []byte
	rsa      *rsa.PublicKey
	ec       *ecdsa.PublicKey
}

// parseJWTKey reads a credential's secret: a PEM public key (RSA for
// RS256, EC P-256 for ES256) or else an HMAC secret for HS256. Errors
// describe the key, never quote it.
func parseJWTKey(cred policy.JWTCredential) (jwtKey, error) {
	k := jwtKey{consumer: cred.Consumer}
	if !strings.HasPrefix(strings.TrimSpace(cred.Secret), "-----BEGIN") {
		k.alg, k.secret = algHS256, []byte(cred.Secret)
		return k, nil
	}
	block, _ := pem.Decode([]byte(strings.TrimSpace(cred.Secret)))
	if block == nil {
		return k, errors.New("malformed PEM")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return k, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
	}
	if err != nil {
		return k, err
	}
	switch key := pub.(type) {
	case *rsa.PublicKey:
		k.alg, k.rsa = algRS256, key
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return k, fmt.Errorf("EC curve %s is not P-256", key.Curve.Params().Name)
		}
		k.alg, k.ec = algES256, key
	default:
		return k, fmt.Errorf("%T keys are not supported (RSA or EC P-256)", pub)
	}
	return k, nil
}

// verify reports whether sig signs input under k.
func (k *jwtKey) verify(input, sig []byte) bool {
	switch k.alg {
	case algHS256:
		m := hmac.New(sha256.New, k.secret)
		m.Write(input)
		return hmac.Equal(m.Sum(nil), sig)
	case algRS256:
		h := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, h[:], sig) == nil
	case algES256:
		// JWS carries ES256 signatures as r||s, 32 bytes each, not DER.
		if len(sig) != 64 {
			return false
		}
		h := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, h[:], r, s)
	}
	return false
}
