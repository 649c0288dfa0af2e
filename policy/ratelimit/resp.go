package ratelimit

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// respConn is a connection to a Redis server speaking RESP2: just what
// the counters need (pipelined commands with bulk-string arguments, and
// simple, error, integer and bulk replies).
type respConn struct {
	c       net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
}

// redisError is an error reply: the command failed, the connection is
// fine.
type redisError string

func (e redisError) Error() string { return "redis: " + string(e) }

var errProtocol = errors.New("redis: malformed reply")

// dialRESP connects, authenticates and selects the database, within
// timeout for each step.
func dialRESP(cfg redisConfig) (*respConn, error) {
	c, err := net.DialTimeout("tcp", cfg.address, cfg.timeout)
	if err != nil {
		return nil, err
	}
	rc := &respConn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c), timeout: cfg.timeout}
	var n int
	if cfg.password != "" {
		rc.array(2)
		rc.bulkString("AUTH")
		rc.bulkString(cfg.password)
		n++
	}
	if cfg.db != 0 {
		rc.array(2)
		rc.bulkString("SELECT")
		rc.bulkInt(int64(cfg.db))
		n++
	}
	if err := rc.send(); err != nil {
		_ = c.Close()
		return nil, err
	}
	for range n {
		if _, err := rc.reply(); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
	return rc, nil
}

func (rc *respConn) close() { _ = rc.c.Close() }

// start sets the deadline of an exchange: what is written until send and
// the replies read after.
func (rc *respConn) start() error { return rc.c.SetDeadline(time.Now().Add(rc.timeout)) }

func (rc *respConn) array(n int) {
	rc.w.WriteByte('*')
	rc.w.WriteString(strconv.Itoa(n))
	rc.w.WriteString("\r\n")
}

func (rc *respConn) bulk(b []byte) {
	rc.w.WriteByte('$')
	rc.w.WriteString(strconv.Itoa(len(b)))
	rc.w.WriteString("\r\n")
	rc.w.Write(b)
	rc.w.WriteString("\r\n")
}

func (rc *respConn) bulkString(s string) {
	rc.w.WriteByte('$')
	rc.w.WriteString(strconv.Itoa(len(s)))
	rc.w.WriteString("\r\n")
	rc.w.WriteString(s)
	rc.w.WriteString("\r\n")
}

func (rc *respConn) bulkInt(n int64) {
	var buf [20]byte
	rc.bulk(strconv.AppendInt(buf[:0], n, 10))
}

// send writes the commands buffered; bufio keeps the first write error,
// which Flush returns.
func (rc *respConn) send() error {
	if err := rc.start(); err != nil {
		return err
	}
	return rc.w.Flush()
}

// reply reads one reply: an integer's value, 0 for a simple string or a
// bulk string (read and dropped). A redisError is an error reply; other
// errors leave the connection unusable.
func (rc *respConn) reply() (int64, error) {
	line, err := rc.line()
	if err != nil {
		return 0, err
	}
	if len(line) == 0 {
		return 0, errProtocol
	}
	switch line[0] {
	case '+':
		return 0, nil
	case '-':
		return 0, redisError(line[1:])
	case ':':
		n, err := strconv.ParseInt(string(line[1:]), 10, 64)
		if err != nil {
			return 0, errProtocol
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n < -1 {
			return 0, errProtocol
		}
		if n >= 0 {
			if _, err := rc.r.Discard(n + 2); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}
	return 0, errProtocol
}

func (rc *respConn) line() ([]byte, error) {
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errProtocol
	}
	return line[:len(line)-2], nil
}
