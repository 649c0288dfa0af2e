// Package storetest is the contract of adminnode/store.Store as tests:
// the same scenarios run against every implementation (bbolt and
// PostgreSQL), concurrency included. An implementation's test calls Run
// (and RunTraffic where it keeps the domain's traffic) with a function
// that opens a new, empty store.
package storetest
