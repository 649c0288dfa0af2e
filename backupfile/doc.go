// Package backupfile is the format of a domain's backup: one signed,
// self-describing stream of records, independent of the store it was
// taken from, so that a bbolt domain can be restored into PostgreSQL and
// back. The admin node writes it (adminnode/backup, from a snapshot of its
// store); the CLI checks it as it stores it (Upload), without any store.
//
// A backup is gzip-compressed JSON lines:
//
//	{"format":"gatehouse-backup-v1","domain":"acme","taken_at":"…","signing_key":"SHA256:…"}
//	{"kind":"group","value":{…}}
//	… one line per record, in the order of the store's snapshot kinds …
//	{"end":true,"items":N,"counts":{"group":2,…},"checksum":"sha256:…","signature":"…"}
//
// The checksum is SHA-256 over the exact bytes of every line before the
// last (header and records, newlines included); the signature is the
// domain signing key's ed25519 signature of "gatehouse-backup-v1\n"
// followed by the checksum. The header names the domain and the key so
// that a backup of another domain is refused before anything is read;
// the signature makes an edited one fail.
//
// Writing streams: records go out as they are given (Writer), nothing is
// built in memory. Reading streams too: Read hands each
// record on as it comes and fails at the end when the checksum or the
// signature does not match, which is why a restore writes into one
// transaction that such a failure rolls back (store.Store.Restore).
//
// The keys of the data dir are never in a backup. What the store keeps
// sealed (gossip keys, the resolved configurations of deployments, the
// environments' secrets) stays sealed under the settings key; password
// and token hashes are the store's hashes.
package backupfile
