package ratelimit

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// t0 is 10 s into a minute (and an hour, and a day).
var t0 = time.Date(2030, 1, 2, 3, 0, 10, 0, time.UTC)

// hub is an in-memory group: what one member broadcasts reaches the
// others' subscribers at once, unless dropped says otherwise.
type hub struct {
	mu      sync.Mutex
	subs    map[string]map[string][]func(string, []byte) // member → topic → handlers
	sent    int
	maxSize int
	drop    func(from, to string) bool
}

func newHub() *hub { return &hub{subs: map[string]map[string][]func(string, []byte){}} }

type member struct {
	h    *hub
	name string
}

func (h *hub) member(name string) *member {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[name] = map[string][]func(string, []byte){}
	return &member{h: h, name: name}
}

func (m *member) Subscribe(topic string, fn func(from string, msg []byte)) func() {
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	m.h.subs[m.name][topic] = append(m.h.subs[m.name][topic], fn)
	return func() {}
}

func (m *member) Broadcast(topic string, msg []byte) {
	m.h.mu.Lock()
	m.h.sent++
	m.h.maxSize = max(m.h.maxSize, len(msg))
	var fns []func(string, []byte)
	for name, topics := range m.h.subs {
		if name != m.name && (m.h.drop == nil || !m.h.drop(m.name, name)) {
			fns = append(fns, topics[topic]...)
		}
	}
	m.h.mu.Unlock()
	for _, fn := range fns {
		fn(m.name, append([]byte(nil), msg...))
	}
}

// env is a test Env with resources and, when g is not nil, a group.
func env(t testing.TB, g policy.GroupChannel) *policy.Env {
	e := policytest.Env(nil)
	e.Resources = policytest.NewResources(t)
	e.Group = g
	return e
}

// at runs p on req at now in a fresh Context.
func at(p policy.Policy, req policy.Request, now time.Time) (*policy.Context, bool) {
	c := &policy.Context{}
	c.Reset(req, now)
	return c, p.Run(c)
}

// from is a GET from addr.
func from(addr string, headers ...string) *policytest.Request {
	r := policytest.Get("/", headers...)
	r.Addr = netip.MustParseAddr(addr)
	return r
}

// headers are the rate-limit headers c gives the client, as one string.
func headers(c *policy.Context) string {
	h := policytest.ResponseHeaders(c, nil)
	var parts []string
	for _, name := range []string{"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"} {
		if v, ok := h[name]; ok {
			parts = append(parts, name+"="+strings.Join(v, ","))
		}
	}
	return strings.Join(parts, " ")
}

// allowedOf runs n requests of req at now and counts those let through.
func allowedOf(p policy.Policy, req policy.Request, now time.Time, n int) int {
	ok := 0
	for range n {
		if _, pass := at(p, req, now); pass {
			ok++
		}
	}
	return ok
}

func storeOf(p policy.Policy) *store { return p.(*limiter).st }
