// Package waitfor is the tests' one way to wait on the processes and
// goroutines they start: poll a condition until it holds, failing with
// the last state seen when it never does, or check that a condition holds
// over a whole window rather than sleeping and looking once. It is for
// tests only; production code waits with internal/pause.
package waitfor
