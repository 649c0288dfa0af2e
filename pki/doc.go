// Package pki is what the node manager and the admin node agree on about
// node certificates, apart from the CA that signs them: the node's own key
// and the certificate request it sends when joining or renewing (NewCSR),
// and when a certificate is due for renewal (NeedsRenewal). The CA itself,
// which holds the domain's root key, is admin node logic (adminnode/ca);
// this package holds no key but the one it makes for the caller, so every
// process may import it. docs/pki.md describes the profiles and renewal.
package pki
