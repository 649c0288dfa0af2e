// Package keybundle carries a domain's private keys from one admin node to
// another: the domain CA (certificate and key), the signing key and the
// settings key, encrypted under a key derived from a passphrase. It is how
// a second admin node of a domain kept in PostgreSQL gets the keys that the
// database never holds.
//
// A bundle is a small JSON document. Its header (format, domain name, key
// derivation parameters, salt, nonce) is in clear so that a wrong file is
// named before any passphrase is tried; the keys are sealed with
// XChaCha20-Poly1305 under an Argon2id key, the header being the AEAD's
// additional data, so that neither part can be edited without Open
// refusing the whole file.
package keybundle
