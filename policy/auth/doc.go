// Package auth provides the authentication policy kinds: key-auth (an API
// key in a header or the query string), basic-auth (HTTP Basic) and
// jwt-auth (HS256, RS256 and ES256 tokens). Each identifies the request's
// consumer from the credentials of the configuration's consumers, so that
// the consumer's own policies, the logs and the metrics know who called,
// and refuses the request with 401 when it cannot.
package auth
