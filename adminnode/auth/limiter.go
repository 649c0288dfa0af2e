package auth

import (
	"container/list"
	"fmt"
	"slices"
	"sync"
	"time"
)

// defaultMaxKeys bounds the Limiter's memory: with a handful of timestamps
// per key, 100k keys are a few tens of megabytes at most.
const defaultMaxKeys = 100_000

// Limiter refuses a key (a user name or a source address) that failed to log
// in maxFailures times within the last window, until the oldest of those
// failures leaves the window. It is safe for concurrent use.
//
// Memory is bounded two ways. Keys are kept in the order of their last
// failure, so keys whose failures have all left the window are dropped from
// the front on every Failed call, at constant amortised cost. And when the
// table holds maxKeys keys, the key that failed least recently is dropped to
// make room. Dropping beats refusing new keys: refusing them would either
// leave new keys unlimited (an attacker fills the table, then guesses
// freely) or lock out everyone not yet in it (an attacker fills the table
// to deny service). The key dropped is the one closest to expiring anyway,
// and an attacker cycling through names cannot evict their own source key,
// since each failure moves it to the back.
type Limiter struct {
	maxFailures int
	window      time.Duration
	maxKeys     int

	mu    sync.Mutex
	keys  map[string]*list.Element // Value: *failures
	order *list.List               // of *failures, by last failure, oldest first
}

// failures are the most recent failures of one key, oldest first, at most
// maxFailures of them: older ones cannot matter.
type failures struct {
	key   string
	times []time.Time
}

func (f *failures) last() time.Time { return f.times[len(f.times)-1] }

// NewLimiter returns a Limiter refusing a key after maxFailures failures
// within window. Both must be positive: a zero limit is a configuration
// error the caller validates, so NewLimiter panics on it.
func NewLimiter(maxFailures int, window time.Duration) *Limiter {
	if maxFailures < 1 || window <= 0 {
		panic(fmt.Sprintf("auth.NewLimiter(%d, %s): both must be positive", maxFailures, window))
	}
	return &Limiter{
		maxFailures: maxFailures,
		window:      window,
		maxKeys:     defaultMaxKeys,
		keys:        make(map[string]*list.Element),
		order:       list.New(),
	}
}

// Allowed reports whether key may try to log in at now and, if not, how long
// it must wait: rounded up to a whole second, at least one, as Retry-After
// needs. Asking does not record anything, so probing costs no memory.
func (l *Limiter) Allowed(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, found := l.keys[key]
	if !found {
		return true, 0
	}
	f := el.Value.(*failures)
	if len(f.times) < l.maxFailures {
		return true, 0
	}
	// times holds exactly the last maxFailures failures, so the key is
	// refused while the oldest of them is still in the window.
	wait := f.times[0].Add(l.window).Sub(now)
	if wait <= 0 {
		return true, 0
	}
	return false, max(time.Second, (wait + time.Second - 1).Truncate(time.Second))
}

// Failed records a failed login for key at now.
func (l *Limiter) Failed(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	if el, found := l.keys[key]; found {
		f := el.Value.(*failures)
		f.times = append(f.times, now)
		// Callers read the clock before taking the lock, so times may
		// arrive slightly out of order; sorting keeps "oldest first" true.
		slices.SortFunc(f.times, time.Time.Compare)
		if len(f.times) > l.maxFailures {
			f.times = slices.Delete(f.times, 0, len(f.times)-l.maxFailures)
		}
		l.order.MoveToBack(el)
		return
	}
	if len(l.keys) >= l.maxKeys {
		l.remove(l.order.Front())
	}
	f := &failures{key: key, times: make([]time.Time, 1, l.maxFailures)}
	f.times[0] = now
	l.keys[key] = l.order.PushBack(f)
}

// Succeeded forgets key's failures: a user who got their password right
// should not stay one typo away from a lock-out.
func (l *Limiter) Succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, found := l.keys[key]; found {
		l.remove(el)
	}
}

// prune drops, from the front, the keys whose last failure has left the
// window. It stops at the first key still in it; a later stale key, only
// possible with out-of-order clocks, is dropped on a later call.
func (l *Limiter) prune(now time.Time) {
	for el := l.order.Front(); el != nil; el = l.order.Front() {
		if now.Sub(el.Value.(*failures).last()) < l.window {
			return
		}
		l.remove(el)
	}
}

func (l *Limiter) remove(el *list.Element) {
	delete(l.keys, el.Value.(*failures).key)
	l.order.Remove(el)
}
