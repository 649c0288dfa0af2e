// Package ratelimit provides the rate-limit policy kind: requests counted
// per consumer, client address or header value against limits per window
// (a sliding window approximated from two fixed ones), answered with 429
// and Retry-After past a limit, with X-RateLimit-* headers. Counts are
// kept per gateway instance, or shared by the instances of a group
// through the gossip layer (policy.GroupChannel) or a Redis server, which
// a request never waits on. docs/policies/rate-limit.md is the user
// reference, with the accuracy of each mode.
package ratelimit
