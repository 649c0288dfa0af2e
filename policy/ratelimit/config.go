package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// What a request is counted by.
const (
	byConsumer = "consumer"
	byIP       = "ip"
	byHeader   = "header"
)

// Where counts are kept.
const (
	modeLocal = "local"
	modeGroup = "group"
	modeRedis = "redis"
)

const (
	defaultSyncInterval = 100 * time.Millisecond
	defaultRedisTimeout = 100 * time.Millisecond
	maxWindow           = 24 * time.Hour
)

var namedWindows = map[string]time.Duration{
	"second": time.Second,
	"minute": time.Minute,
	"hour":   time.Hour,
}

// config is a rate-limit policy's configuration, checked.
type config struct {
	limits  []limitConfig
	key     string
	header  string // header_name, for key "header"
	mode    string
	sync    time.Duration // group and redis modes
	redis   redisConfig
	headers bool
	budget  string
}

type limitConfig struct {
	requests int
	window   time.Duration
}

type redisConfig struct {
	address  string
	password string
	db       int
	timeout  time.Duration
}

func parseConfig(m map[string]any) (config, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(m, &errs)
	cfg := config{}

	if list, ok := m["limits"].([]any); ok && len(list) == 0 {
		r.Fail("limits", "at least one limit is required")
	}
	r.Required("limits")
	windowAt := map[time.Duration]int{}
	r.List("limits", func(i int, lr *policy.Reader) {
		var l limitConfig
		lr.Required("requests")
		l.requests = lr.Int("requests", 0, 1, math.MaxInt32)
		if lr.Required("window") {
			l.window = readWindow(lr)
		}
		if l.window > 0 {
			if j, dup := windowAt[l.window]; dup {
				lr.Failf("window", "same window as limits[%d]: keep the lower limit", j)
			}
			windowAt[l.window] = i
		}
		cfg.limits = append(cfg.limits, l)
	})

	cfg.key = r.OneOf("key", byConsumer, byConsumer, byIP, byHeader)
	switch {
	case cfg.key == byHeader:
		if r.Required("header_name") {
			h, ok := r.Any("header_name").(string)
			if !ok || !httpascii.IsToken(h) {
				r.Fail("header_name", "must be an HTTP header name")
			}
			cfg.header = h
		}
	case r.Has("header_name"):
		r.String("header_name", "")
		r.Fail("header_name", `only with key "header"`)
	}

	cfg.mode = r.OneOf("mode", modeLocal, modeLocal, modeGroup, modeRedis)
	cfg.sync = r.Duration("sync_interval", defaultSyncInterval, 10*time.Millisecond, 10*time.Second)
	if cfg.mode == modeLocal && r.Has("sync_interval") {
		r.Fail("sync_interval", `only with mode "group" or "redis"`)
	}
	switch {
	case cfg.mode == modeRedis && !r.Has("redis"):
		r.Fail("redis", `required with mode "redis"`)
	case cfg.mode == modeRedis:
		r.Object("redis", func(rr *policy.Reader) { cfg.redis = readRedis(rr) })
	case r.Has("redis"):
		r.Any("redis")
		r.Fail("redis", `only with mode "redis"`)
	}

	cfg.headers = r.Bool("headers", true)
	cfg.budget = r.String("budget", "")
	if len(cfg.budget) > 128 {
		r.Fail("budget", "must be at most 128 characters")
	}
	r.Done()
	if err := errs.Err(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

func readWindow(r *policy.Reader) time.Duration {
	s, _ := r.Any("window").(string)
	if d, ok := namedWindows[s]; ok {
		return d
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d > maxWindow || d%time.Second != 0 {
		r.Fail("window", `must be "second", "minute", "hour" or a whole number of seconds from 1s to 24h such as "10s"`)
		return 0
	}
	return d
}

func readRedis(r *policy.Reader) redisConfig {
	c := redisConfig{}
	if r.Required("address") {
		c.address, _ = r.Any("address").(string)
		if host, port, err := net.SplitHostPort(c.address); err != nil || host == "" || !validPort(port) {
			r.Fail("address", `must be host:port, such as "redis.internal:6379"`)
		}
	}
	c.password = r.String("password", "")
	c.db = r.Int("db", 0, 0, 1<<16-1)
	c.timeout = r.Duration("timeout", defaultRedisTimeout, time.Millisecond, 10*time.Second)
	return c
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// windows are the limits' windows (distinct: parseConfig refuses twice
// the same), shortest first: the counters a key keeps.
func (c *config) windows() []time.Duration {
	ws := make([]time.Duration, len(c.limits))
	for i, l := range c.limits {
		ws[i] = l.window
	}
	slices.Sort(ws)
	return ws
}

// identity is a canonical string of everything that decides how requests
// are counted: policies that share it share their counters, within an
// instance and, through the gossip topic or the Redis keys derived from
// it, across the group. headers is left out (it changes no count), and so
// is the Redis password, so that the names derived from it reveal nothing.
func (c *config) identity() string {
	var b strings.Builder
	b.WriteString("rate-limit/v1")
	for _, l := range c.limits {
		b.WriteString(" limit=" + strconv.Itoa(l.requests) + "/" + strconv.FormatInt(int64(l.window/time.Second), 10))
	}
	b.WriteString(" key=" + c.key)
	if c.key == byHeader {
		b.WriteString(" header=" + strconv.Quote(strings.ToLower(c.header)))
	}
	b.WriteString(" mode=" + c.mode)
	if c.mode != modeLocal {
		b.WriteString(" sync=" + c.sync.String())
	}
	if c.mode == modeRedis {
		b.WriteString(" redis=" + strconv.Quote(c.redis.address) + "/" + strconv.Itoa(c.redis.db) + " timeout=" + c.redis.timeout.String())
	}
	b.WriteString(" budget=" + strconv.Quote(c.budget))
	return b.String()
}

// resourceKey is the key of the counters in Env.Resources: the identity,
// and the password, since a new password needs a new connection.
func (c *config) resourceKey() string {
	key := c.identity()
	if c.mode == modeRedis {
		key += " password=" + strconv.Quote(c.redis.password)
	}
	return key
}

// name is a short stable name of the identity, for the gossip topic and
// the Redis keys.
func (c *config) name() string {
	sum := sha256.Sum256([]byte(c.identity()))
	return hex.EncodeToString(sum[:8])
}
