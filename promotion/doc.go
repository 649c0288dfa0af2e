// Package promotion is the file format that carries a group's
// configuration from one domain to another (dev to UAT to prod): a
// package, written by Export in the source domain and read by Open in the
// target domain, usually as a file named NAME.ghpkg.
//
// A package holds the configuration as the team wrote it, with its
// placeholders (package deploy/placeholder), never resolved: each domain
// resolves them with its own settings and secrets. It says where the
// configuration comes from (domain, group, deployment number, author,
// message, time) and is signed with the source domain's Ed25519 key, the
// key that signs its deployments. The signed bytes start with their own
// version line, so a package signature can never pass for a deployment
// signature or the reverse.
//
// Open trusts nothing the file says about itself: the key it verifies the
// signature with is the one the target domain registered for the source
// domain, and the key written in the file only has to match it. It checks
// the format, the checksum, the trust, the key, the signature, and only
// then reads the configuration. A package never carries a secret in clear:
// Export refuses a configuration whose secret fields hold anything but
// ${secret:NAME} placeholders (placeholder.CheckSecrets), and Open refuses
// such a package too.
//
// docs/promotion.md describes the format for users and other
// implementations.
package promotion
