// Package router compiles a configuration's routes into an immutable table
// and matches requests against it without allocating, so that the gateway
// can swap tables on reload while requests keep looking up the old one.
//
// Precedence, from strongest to weakest:
//
//   - Host: an exact host, then wildcard hosts from the longest suffix to
//     the shortest, then routes without hosts. When no route of a host
//     bucket matches the rest of the request, the next bucket is tried.
//   - Path, within a bucket: at each segment a literal beats a parameter,
//     which beats a prefix ending there; a longer prefix beats a shorter
//     one. The first path node, in that order, with a route that also
//     matches the method and headers wins.
//   - Routes ending at the same path node: higher Priority, then more
//     header matches, then routes listing methods, then the lower Handle.
//
// Priority therefore never lets a route win over a more specific host or
// path; it only orders routes that tie on both.
package router
