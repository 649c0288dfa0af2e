package policytest

import (
	"io"
	"sync"
	"testing"
)

// Resources is a policy.Resources that keeps what it made until Close,
// as the gateway's keeps it while a configuration is in use. The zero
// value is ready.
type Resources struct {
	mu   sync.Mutex
	m    map[string]io.Closer
	made int
}

// NewResources returns Resources closed when the test ends.
func NewResources(t testing.TB) *Resources {
	r := &Resources{}
	t.Cleanup(r.Close)
	return r
}

// Get implements policy.Resources.
func (r *Resources) Get(key string, make func() (io.Closer, error)) (io.Closer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.m[key]; ok {
		return c, nil
	}
	c, err := make()
	if err != nil {
		return nil, err
	}
	if r.m == nil {
		r.m = map[string]io.Closer{}
	}
	r.m[key] = c
	r.made++
	return c, nil
}

// Made is how many resources Get has made.
func (r *Resources) Made() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.made
}

// Close closes what Get made and forgets it.
func (r *Resources) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, c := range r.m {
		c.Close()
		delete(r.m, k)
	}
}
