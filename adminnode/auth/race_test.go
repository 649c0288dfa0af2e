//go:build race

package auth

// raceEnabled lets tests skip work that the race detector makes slow and
// that has no concurrency to check: a cost-12 bcrypt takes seconds under it.
const raceEnabled = true
