package apitypes

import "time"

// Kinds of certificate in CertificateExpiry.
const (
	// CertCA is a root of the domain CA (two during a rotation).
	CertCA = "ca"
	// CertAdminServer is an admin node's HTTPS certificate: the answering
	// node's as it serves it, the other nodes' of a shared store as each
	// last recorded it.
	CertAdminServer = "admin-server"
	// CertNode is a node manager's client certificate, as it last
	// presented it.
	CertNode = "node"
	// CertListener is a TLS certificate of a group's current deployment.
	CertListener = "listener"
)

// States of CertificateExpiry.
const (
	CertOK      = "ok"
	CertWarning = "warning"
	CertExpired = "expired"
)

// CertificateExpiry is the lifetime of one certificate the domain depends
// on (GET /certificates, the overview's certificates).
type CertificateExpiry struct {
	Kind string `json:"kind"`
	// Name names the certificate within its kind: the root's fingerprint,
	// the admin node, the host, the certificate's name in the group's
	// configuration.
	Name  string `json:"name"`
	Group string `json:"group,omitempty"`
	Host  string `json:"host,omitempty"`
	// Subject is the certificate's CommonName.
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// LifeLeft is the fraction of its validity still ahead, 0 once
	// expired.
	LifeLeft float64 `json:"life_left"`
	// State is "ok", "warning" (less than the admin node's
	// --cert-warn-fraction of its life left) or "expired".
	State string `json:"state"`
	// Role says what a CA root does during a rotation: "issuer" (signs
	// node certificates), "server" (signs the admin node's certificate),
	// or "issuer,server" outside one.
	Role string `json:"role,omitempty"`
}

// CAStatus is the answer of GET /ca and of its rotation and retirement.
type CAStatus struct {
	// Roots are the trusted roots, newest first.
	Roots []CertificateExpiry `json:"roots"`
	// Rotating is true between `ca rotate` and `ca retire`.
	Rotating bool `json:"rotating"`
	// Fingerprint is the root the admin node presents, which `node join
	// --ca-fingerprint` and `login --ca-fingerprint` pin.
	Fingerprint string `json:"fingerprint"`
	// Issuer is the fingerprint of the root signing node certificates.
	Issuer string `json:"issuer"`
	// Pending lists the hosts whose node manager last presented a
	// certificate of a root other than the issuer: not yet renewed.
	Pending []string `json:"pending"`
}

// CARetire is the body of POST /ca/retire.
type CARetire struct {
	// Force retires the previous root even while hosts in Pending have
	// not renewed: they lose their connection and must join again.
	Force bool `json:"force,omitempty"`
}
