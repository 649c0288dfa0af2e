package gateway

import (
	"io"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// resources keeps what policies own across deployments (rate-limit
// counters, log queues, plugin processes), so that a deployment that keeps
// a policy's configuration keeps its state and one that drops it closes
// them. Each build of a configuration is a generation: what the last
// applied build did not ask for is closed once it serves.
type resources struct {
	logger hclog.Logger
	mu     sync.Mutex
	gen    uint64
	items  map[string]*resource
}

type resource struct {
	c        io.Closer
	created  uint64
	lastUsed uint64
}

func newResources(logger hclog.Logger) *resources {
	return &resources{logger: logger, items: map[string]*resource{}}
}

// begin starts a build.
func (r *resources) begin() {
	r.mu.Lock()
	r.gen++
	r.mu.Unlock()
}

// Get implements policy.Resources.
func (r *resources) Get(key string, make func() (io.Closer, error)) (io.Closer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if it, ok := r.items[key]; ok {
		it.lastUsed = r.gen
		return it.c, nil
	}
	c, err := make()
	if err != nil {
		return nil, err
	}
	r.items[key] = &resource{c: c, created: r.gen, lastUsed: r.gen}
	return c, nil
}

// commit closes what the build that now serves did not ask for.
func (r *resources) commit() {
	r.close(func(it *resource) bool { return it.lastUsed < r.gen })
}

// abort closes what a failed build made; what the serving configuration
// uses stays.
func (r *resources) abort() {
	r.close(func(it *resource) bool { return it.created == r.gen })
}

// closeAll closes everything, at shutdown.
func (r *resources) closeAll() { r.close(func(*resource) bool { return true }) }

func (r *resources) close(drop func(*resource) bool) {
	r.mu.Lock()
	var closing []io.Closer
	for k, it := range r.items {
		if drop(it) {
			closing = append(closing, it.c)
			delete(r.items, k)
		}
	}
	r.mu.Unlock()
	for _, c := range closing {
		if err := c.Close(); err != nil {
			r.logger.Warn("closing a policy resource failed", "error", err)
		}
	}
}
