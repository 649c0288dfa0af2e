// Package placeholder finds and resolves the placeholders of a
// configuration, so that one configuration can be promoted from domain to
// domain (dev, UAT, prod) and take each domain's own upstream addresses,
// host names, certificates and secrets.
//
// # Syntax
//
// A placeholder is written inside a string value:
//
//	${NAME}            the value of the setting NAME
//	${NAME:-default}   the same, or default when NAME is not set or empty
//	${secret:NAME}     the value of the secret NAME
//	$${                a literal "${" (nothing is substituted)
//
// NAME is 1 to 128 upper-case ASCII letters, digits and "_", starting with
// a letter (ValidName), as environment variables are usually written.
// Settings and secrets are separate sets: ${NAME} never reads a secret and
// ${secret:NAME} never reads a setting. A secret has no default, as the
// default would be a secret written in clear. A default is the text up to
// the first "}", taken as it is: it cannot hold "}" nor a placeholder.
// A "$" that does not start "${" or "$${" is an ordinary character, and so
// is a "{" or "}" that is not part of a placeholder: route parameters such
// as "/orders/{id}" are left alone.
//
// A value may hold several placeholders and text around them:
// "${ORDERS_HOST}:8080", "Bearer ${secret:ORDERS_TOKEN}". Resolved values
// are inserted as they are and never read again for placeholders.
//
// # Which fields
//
// Every string of a configuration may hold placeholders, wherever it is,
// including the string values nested in policy configurations, except the
// fields tagged placeholder:"no" in package deploy: the names of
// upstreams, services, routes, consumers, certificates and policies, a
// service's upstream (a reference to a name), and the keywords that say
// how other fields are read (an upstream's balancer, hash_on.source, a
// route's methods, a credential's type). Names identify resources across
// domains, for diffs and promotion, so they are the same everywhere; a
// placeholder in them is an error. The keys of policy configurations are
// field names of the policies and are left as they are written.
//
// Only strings hold placeholders. Integers, booleans and the durations of
// upstreams are not strings, so "${RETRIES}" cannot stand for retries; in a
// policy configuration, a placeholder resolves to a string, which the
// policy accepts only where it expects a string (a duration written as a
// string, such as a rate limit's Redis timeout, is one). A port is part of
// an address string, so "${ORDERS_HOST}:8080" and "10.0.0.5:${PORT}" both
// work.
//
// The walk over a configuration uses reflection on the types of package
// deploy, so a field added there is covered without changing this package;
// a field that must not take placeholders, or that holds a secret, is
// tagged in deploy.
//
// # Secrets
//
// The secret fields are those tagged placeholder:"secret" in package deploy
// (a consumer credential's key, password and secret, a certificate's
// private key) and, in policy configurations, the values under a key named
// "password" or "secret" or ending in "_password" or "_secret" (a rate
// limit's Redis password, an external policy's HMAC secret). A
// configuration that leaves its domain in a promotion package must hold in
// each secret field exactly one ${secret:NAME} placeholder, or nothing:
// CheckSecrets reports every other value. Secrets elsewhere (a token in a
// header value set by a policy) cannot be recognised; write them as
// ${secret:NAME} too.
//
// Resolve returns a new configuration holding the resolved values,
// secrets included: it is for deploying, never for exporting. Errors name
// placeholders and field paths, never values.
package placeholder
