package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Limits are the numbers of a Limiter. docs/admin-api.md states the
// defaults and why they are what they are.
type Limits struct {
	// FreeFailures is how many failures one user may make from one
	// source before every further failure from there costs a delay.
	FreeFailures int
	// FirstDelay is the delay after failure number FreeFailures; each
	// further failure doubles it, up to MaxDelay.
	FirstDelay, MaxDelay time.Duration
	// PairMemory is how long a (user, source) pair's failures are kept
	// after its last one. It must exceed MaxDelay, or waiting out the
	// longest delay would also wipe the count.
	PairMemory time.Duration
	// SourceFailures failures from one source, over all users, within
	// SourceWindow refuse the source until the oldest leaves the window.
	SourceFailures int
	SourceWindow   time.Duration
	// UserFailures failures for one user, over all sources, within
	// UserWindow put the user under attack: while it lasts, every source
	// that has failed for the user waits MaxDelay after each failure.
	// Sources that have not failed are never refused on this account.
	UserFailures int
	UserWindow   time.Duration
	// MaxPairs, MaxSources and MaxUsers bound the memory: when a table is
	// full, its least recently failed entry makes room.
	MaxPairs, MaxSources, MaxUsers int
}

// DefaultLimits are the admin API's login limits.
func DefaultLimits() Limits {
	return Limits{
		FreeFailures:   5,
		FirstDelay:     time.Second,
		MaxDelay:       5 * time.Minute,
		PairMemory:     time.Hour,
		SourceFailures: 30,
		SourceWindow:   5 * time.Minute,
		UserFailures:   100,
		UserWindow:     5 * time.Minute,
		MaxPairs:       100_000,
		MaxSources:     50_000,
		MaxUsers:       10_000,
	}
}

func (l Limits) check() error {
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"FreeFailures", l.FreeFailures >= 1},
		{"FirstDelay", l.FirstDelay > 0},
		{"MaxDelay", l.MaxDelay >= l.FirstDelay},
		{"PairMemory", l.PairMemory > l.MaxDelay},
		{"SourceFailures", l.SourceFailures >= 1},
		{"SourceWindow", l.SourceWindow > 0},
		{"UserFailures", l.UserFailures >= 1},
		{"UserWindow", l.UserWindow > 0},
		{"MaxPairs", l.MaxPairs >= 1},
		{"MaxSources", l.MaxSources >= 1},
		{"MaxUsers", l.MaxUsers >= 1},
	} {
		if !f.ok {
			return fmt.Errorf("login limits: %s out of range in %+v", f.name, l)
		}
	}
	return nil
}

// Limiter slows down password guessing without handing anyone a way to
// lock a user out. It counts failures three ways:
//
//   - per (user, source address): FreeFailures free, then a delay after
//     each failure, doubling from FirstDelay to MaxDelay. This is the
//     brake on one address guessing one password; an attacker's failures
//     at address A never delay the user at address B.
//   - per source, over all users: a ceiling on one address trying many
//     users' passwords, each with its own free failures.
//   - per user, over all sources: a high ceiling that spots a guessing
//     campaign spread over many addresses. Reaching it does not lock the
//     user; it takes the free failures away from every address that has
//     failed for that user, so each of them gets one guess per MaxDelay,
//     while an address with no failures, the real user's usually, still
//     logs in at the first try.
//
// A success clears the (user, source) pair only: clearing the source or
// the user would let an attacker who owns one account reset the counts
// against another by logging in between guesses.
//
// Memory is bounded per table. Entries are kept in the order of their
// last failure, so expired ones are dropped from the front on every
// Failed, and a full table drops the least recently failed entry: the one
// closest to expiring, while a key that keeps failing stays at the back.
// Keys are bounded too: long user names and sources are hashed, and IPv6
// sources are counted per /64, the block one host or household gets.
//
// It is safe for concurrent use.
type Limiter struct {
	lim Limits

	mu      sync.Mutex
	pairs   table[int]     // failures of a pair since it was last cleared
	sources table[[]int64] // a source's last SourceFailures failures, Unix ns, oldest first
	users   table[[]int64] // a user's last UserFailures failures
}

// NewLimiter returns a Limiter with lim, or an error naming the limit that
// is out of range.
func NewLimiter(lim Limits) (*Limiter, error) {
	if err := lim.check(); err != nil {
		return nil, err
	}
	return &Limiter{
		lim:     lim,
		pairs:   newTable[int](lim.MaxPairs, lim.PairMemory),
		sources: newTable[[]int64](lim.MaxSources, lim.SourceWindow),
		users:   newTable[[]int64](lim.MaxUsers, lim.UserWindow),
	}, nil
}

// Allowed reports whether user may try a password from source at now and,
// if not, how long to wait: rounded up to a whole second, at least one, as
// Retry-After needs. Asking records nothing, so probing costs no memory.
func (l *Limiter) Allowed(user, source string, now time.Time) (ok bool, retryAfter time.Duration) {
	user, source = userKey(user), sourceKey(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	if e := l.sources.get(source); e != nil && len(e.v) == l.lim.SourceFailures {
		wait = time.Unix(0, e.v[0]).Add(l.lim.SourceWindow).Sub(now)
	}
	if e := l.pairs.get(pairKey(user, source)); e != nil {
		wait = max(wait, e.last.Add(l.delay(e.v, l.underAttack(user, now))).Sub(now))
	}
	if wait <= 0 {
		return true, 0
	}
	return false, max(time.Second, (wait + time.Second - 1).Truncate(time.Second))
}

// Failed records that user failed to log in from source at now. It
// reports whether this failure put the user under attack (UserFailures
// within UserWindow), for the caller to tell the operator.
func (l *Limiter) Failed(user, source string, now time.Time) (attackBegan bool) {
	user, source = userKey(user), sourceKey(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pairs.prune(now)
	l.sources.prune(now)
	l.users.prune(now)
	p := l.pairs.touch(pairKey(user, source), now)
	// Past the point where the delay reaches MaxDelay the count no longer
	// matters; stopping there keeps it from overflowing.
	p.v = min(p.v+1, l.lim.FreeFailures+64)
	s := l.sources.touch(source, now)
	s.v = addRecent(s.v, now, l.lim.SourceFailures)
	before := l.underAttack(user, now)
	u := l.users.touch(user, now)
	u.v = addRecent(u.v, now, l.lim.UserFailures)
	return !before && l.underAttack(user, now)
}

// Succeeded forgets the failures of user from source: a user who got the
// password right should not stay one typo away from a delay there.
func (l *Limiter) Succeeded(user, source string) {
	user, source = userKey(user), sourceKey(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pairs.remove(pairKey(user, source))
}

// delay is how long a pair with n failures waits after its last one.
func (l *Limiter) delay(n int, underAttack bool) time.Duration {
	if underAttack {
		if n > 0 {
			return l.lim.MaxDelay
		}
		return 0
	}
	if n < l.lim.FreeFailures {
		return 0
	}
	d := l.lim.FirstDelay
	for i := l.lim.FreeFailures; i < n && d < l.lim.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.lim.MaxDelay)
}

// underAttack reports whether user failed UserFailures times within
// UserWindow before now.
func (l *Limiter) underAttack(user string, now time.Time) bool {
	e := l.users.get(user)
	return e != nil && len(e.v) == l.lim.UserFailures &&
		now.Sub(time.Unix(0, e.v[0])) < l.lim.UserWindow
}

// addRecent adds now to times, oldest first, keeping the last n: older
// ones cannot matter to a ceiling of n.
func addRecent(times []int64, now time.Time, n int) []int64 {
	if times == nil {
		// Room for n and the one appended before trimming, and no more:
		// append's doubling would waste up to n more per entry.
		times = make([]int64, 0, n+1)
	}
	times = append(times, now.UnixNano())
	// Callers read the clock before taking the lock, so times may arrive
	// slightly out of order; sorting keeps "oldest first" true.
	slices.Sort(times)
	if len(times) > n {
		times = slices.Delete(times, 0, len(times)-n)
	}
	return times
}

// maxKeyBytes bounds what one key holds, whatever a client sends as a user
// name: real user names are at most 63 bytes.
const maxKeyBytes = 64

func userKey(user string) string {
	if len(user) > maxKeyBytes {
		sum := sha256.Sum256([]byte(user))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return user
}

// sourceKey counts an IPv6 source per /64: one host or household gets a
// whole /64 and could otherwise guess from 2^64 addresses.
func sourceKey(source string) string {
	if a, err := netip.ParseAddr(source); err == nil && a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return userKey(source)
}

func pairKey(user, source string) string { return user + "\x00" + source }
