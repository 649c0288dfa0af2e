package ratelimit

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

const (
	// redisBatch is how many keys' counts go in one pipelined exchange
	// (two commands each), each exchange within the configured timeout.
	redisBatch     = 256
	minRedisRetry  = 200 * time.Millisecond
	maxRedisRetry  = 5 * time.Second
	redisLogPeriod = 30 * time.Second
)

// redisSync shares a store's counts through a Redis server: every flush
// adds, for each key counted since the previous one and each window,
// what this instance counted since its last flush to the window's key in
// Redis (INCRBY, which answers the group's total, and PEXPIRE), pipelined.
// Requests never wait on Redis: they decide on the last total read plus
// what was counted here since. While Redis cannot be reached, that total
// stays as last read and counting goes on locally; the connection is
// tried again with backoff, and what was counted meanwhile is added once
// it is back.
//
// Only the flush goroutine uses a redisSync.
type redisSync struct {
	st     *store
	cfg    redisConfig
	prefix string // of the Redis keys: "gatehouse:rl:<name>:"
	log    hclog.Logger

	conn    *respConn
	retryAt time.Time
	backoff time.Duration
	down    bool // Redis failed and has not answered since

	// Warnings are logged at most once per redisLogPeriod; suppressed
	// counts the ones not logged since.
	loggedAt   time.Time
	suppressed int

	ops []redisOp
	key []byte
}

// redisOp is one key's window in an exchange.
type redisOp struct {
	e          *entry
	slot       int
	idx, delta int64
	total      int64
	ok         bool
}

func newRedisSync(st *store, cfg redisConfig, name string, log hclog.Logger) *redisSync {
	return &redisSync{st: st, cfg: cfg, prefix: "gatehouse:rl:" + name + ":", log: log}
}

func (r *redisSync) close() {
	if r.conn != nil {
		r.conn.close()
	}
}

func (r *redisSync) flush() {
	now := r.st.now()
	if r.conn == nil {
		if now.Before(r.retryAt) {
			return // the dirty lists wait for the connection
		}
		c, err := dialRESP(r.cfg)
		if err != nil {
			r.failed(now, err)
			return
		}
		r.conn = c
		if r.down {
			r.down, r.backoff = false, 0
			r.log.Info("rate-limit: Redis available again: sharing counts", "address", r.cfg.address)
		}
	}
	r.ops = r.ops[:0]
	r.st.takeDirty(func(e *entry) {
		for j := range e.slots {
			s := &e.slots[j]
			r.ops = append(r.ops, redisOp{e: e, slot: j, idx: s.idx, delta: s.cur - s.sent})
		}
	}, func() {})
	for start := 0; start < len(r.ops); start += redisBatch {
		batch := r.ops[start:min(start+redisBatch, len(r.ops))]
		if err := r.exchange(batch); err != nil {
			r.conn.close()
			r.conn = nil
			r.failed(now, err)
			r.relist(r.ops[start:])
			break
		}
		r.apply(batch)
	}
	clear(r.ops) // keeps no entry alive
}

// exchange adds each op's delta to its key and reads the totals.
func (r *redisSync) exchange(batch []redisOp) error {
	c := r.conn
	for i := range batch {
		op := &batch[i]
		r.key = r.appendKey(r.key[:0], op)
		c.array(3)
		c.bulkString("INCRBY")
		c.bulk(r.key)
		c.bulkInt(op.delta)
		c.array(3)
		c.bulkString("PEXPIRE")
		c.bulk(r.key)
		c.bulkInt(2 * r.st.windows[op.slot] / int64(time.Millisecond))
	}
	if err := c.send(); err != nil {
		return err
	}
	var cmdErr error
	for i := range batch {
		op := &batch[i]
		total, err := c.reply()
		op.total, op.ok = total, err == nil
		if _, expErr := c.reply(); err == nil {
			err = expErr
		}
		var re redisError
		switch {
		case errors.As(err, &re):
			cmdErr = err
		case err != nil:
			return err
		}
	}
	if cmdErr != nil {
		r.warn(r.st.now(), "rate-limit: Redis refused a command", "address", r.cfg.address, "error", cmdErr)
	}
	return nil
}

// appendKey is the op's Redis key: prefix, window length in seconds,
// window number, and the key, an address written out.
func (r *redisSync) appendKey(b []byte, op *redisOp) []byte {
	b = append(b, r.prefix...)
	b = strconv.AppendInt(b, r.st.windows[op.slot]/int64(time.Second), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, op.idx, 10)
	if op.e.kind == kindIP && len(op.e.key) == 16 {
		b = append(b, ":ip:"...)
		return netip.AddrFrom16([16]byte([]byte(op.e.key))).Unmap().AppendTo(b)
	}
	b = append(b, ":k:"...)
	return append(b, op.e.key...)
}

// apply records the totals Redis answered, for the windows still
// current.
func (r *redisSync) apply(batch []redisOp) {
	for i := range batch {
		op := &batch[i]
		if !op.ok {
			continue
		}
		sh := &r.st.shards[op.e.shard]
		sh.mu.Lock()
		if s := &op.e.slots[op.slot]; s.idx == op.idx {
			s.sent += op.delta
			s.shared = op.total
		}
		sh.mu.Unlock()
	}
}

// relist puts the keys of ops not sent back on the dirty lists.
func (r *redisSync) relist(ops []redisOp) {
	for i := range ops {
		sh := &r.st.shards[ops[i].e.shard]
		sh.mu.Lock()
		r.st.markDirty(sh, ops[i].e)
		sh.mu.Unlock()
	}
}

func (r *redisSync) failed(now time.Time, err error) {
	r.backoff = min(max(2*r.backoff, minRedisRetry), maxRedisRetry)
	r.retryAt = now.Add(r.backoff)
	if !r.down {
		r.down = true
		r.loggedAt = time.Time{} // the first failure is always logged
	}
	r.warn(now, "rate-limit: Redis unavailable: counting locally", "address", r.cfg.address, "error", err, "retry_in", r.backoff)
}

func (r *redisSync) warn(now time.Time, msg string, args ...any) {
	if now.Sub(r.loggedAt) < redisLogPeriod {
		r.suppressed++
		return
	}
	if r.suppressed > 0 {
		args = append(args, "similar_not_logged", r.suppressed)
	}
	r.log.Warn(msg, args...)
	r.loggedAt, r.suppressed = now, 0
}
