package waitfor

import (
	"testing"
	"time"
)

// Polling starts fast, so that a condition met at once costs little, and
// slows down, so that a long wait on a remote process does not hammer it.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Cond polls check until it reports ok and fails t when timeout passes
// first, naming what was awaited and the state check described last. A
// check may itself fail t (e.g. when the process it waits on exited).
func Cond(t testing.TB, timeout time.Duration, what string, check func() (ok bool, state string)) {
	t.Helper()
	if ok, state := Within(timeout, check); !ok {
		t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, orNone(state))
	}
}

// Within polls check as Cond does and reports whether it was ok before
// timeout passed, with the state it described last: for a test that
// does something else when the wait fails.
func Within(timeout time.Duration, check func() (ok bool, state string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	poll := firstPoll
	for {
		ok, state := check()
		if ok {
			return true, state
		}
		if !time.Now().Before(deadline) {
			return false, state
		}
		time.Sleep(min(poll, time.Until(deadline)))
		poll = min(2*poll, maxPoll)
	}
}

// True is Cond for a condition with no state worth reporting.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Cond(t, timeout, what, func() (bool, string) { return cond(), "" })
}

// Holds checks over the whole window that check reports ok, polling from
// the start to the end of the window, and fails t at the first poll where
// it does not, with the state it described. It is how a test says
// "nothing happened during this time".
func Holds(t testing.TB, window time.Duration, what string, check func() (ok bool, state string)) {
	t.Helper()
	end := time.Now().Add(window)
	poll := firstPoll
	for {
		// The last poll comes after the window ended, so that all of it is
		// covered.
		last := !time.Now().Before(end)
		if ok, state := check(); !ok {
			t.Fatalf("%s did not hold for %s: %s", what, window, orNone(state))
			return
		}
		if last {
			return
		}
		time.Sleep(min(poll, time.Until(end)))
		poll = min(2*poll, maxPoll)
	}
}

func orNone(state string) string {
	if state == "" {
		return "(none reported)"
	}
	return state
}
