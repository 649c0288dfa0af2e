package httplog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/fieldpath"
	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// config is what the sender is made of: policies with the same config
// share one sender, and so one queue.
type config struct {
	endpoint      string
	batchSize     int
	flushInterval time.Duration
	buffer        int
	timeout       time.Duration
	headers       map[string]string
}

func readConfig(r *policy.Reader) config {
	var c config
	if r.Required("endpoint") {
		c.endpoint = r.String("endpoint", "")
		if u, err := url.Parse(c.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.Fail("endpoint", "must be an http:// or https:// URL")
		}
	}
	c.batchSize = r.Int("batch_size", 100, 1, 10000)
	c.flushInterval = r.Duration("flush_interval", time.Second, 10*time.Millisecond, time.Hour)
	c.buffer = r.Int("buffer", 10000, 1, 1000000)
	c.timeout = r.Duration("timeout", 5*time.Second, 100*time.Millisecond, 5*time.Minute)
	c.headers = r.StringMap("headers")
	for _, name := range policy.SortedKeys(c.headers) {
		value := c.headers[name]
		switch {
		case !httpascii.IsToken(name):
			r.Fail(fieldpath.Join("headers", name), "must be keyed by an HTTP header name")
		case strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }):
			r.Fail(fieldpath.Join("headers", name), "must not contain control characters")
		}
	}
	return c
}

// key names the sender of c among the gateway's resources. It is a digest
// because the headers may hold the collector's credentials.
func (c *config) key() string {
	names := make([]string, 0, len(c.headers))
	for n := range c.headers {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	fmt.Fprintf(h, "%q %d %s %d %s", c.endpoint, c.batchSize, c.flushInterval, c.buffer, c.timeout)
	for _, n := range names {
		fmt.Fprintf(h, " %q=%q", n, c.headers[n])
	}
	return "http-log:" + hex.EncodeToString(h.Sum(nil))
}
