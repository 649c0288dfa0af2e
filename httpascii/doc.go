// Package httpascii holds the byte-level rules of HTTP's grammar that the
// configuration's validation, the policies and the engines' adapters all
// apply to header names and methods. They take a name as a string or as an
// engine's []byte without converting it, so that checking a request's
// headers does not allocate.
package httpascii
