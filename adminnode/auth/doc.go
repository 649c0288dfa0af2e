// Package auth holds the credentials of the admin API: how passwords and API
// tokens are made, stored and checked, and how repeated login failures are
// slowed down. It is kept apart from the HTTP layer so that the rules that
// decide whether a secret is good are in one small place that can be read
// and tested on its own; the API decides when to call them.
//
// Passwords are stored as bcrypt hashes, because they are chosen by people
// and must be expensive to guess offline. bcrypt reads only the first 72
// bytes of a password, so longer passwords are refused instead of being
// silently truncated, which would make two different passwords equal.
//
// API tokens are random, so they are stored as SHA-256 hashes: a slow hash
// would add nothing against guessing 256 random bits and would cost every
// API request. The bearer form gh_<id>_<secret> carries a public id, so the
// server looks a token up by id and compares one hash, instead of hashing
// against every stored token.
//
// Login timing must not reveal which user names exist, so a login for an
// unknown user spends the same bcrypt work (CheckUnknownUser) as a real one.
// The Limiter slows online guessing per (user, source address), with
// ceilings per source and per user that slow but never lock a user out.
package auth
