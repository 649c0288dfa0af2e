package store

import "sync"

// Memory is an in-memory Store, for gateways run without a data directory
// and for tests of code that needs a Store.
type Memory struct {
	mu      sync.Mutex
	seq     uint64
	records []Record // oldest first
}

var _ Store = (*Memory)(nil)

// Save implements Store.
func (m *Memory) Save(r Record) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	r.Seq = m.seq
	m.records = append(m.records, r)
	if len(m.records) > Keep {
		m.records = append([]Record(nil), m.records[len(m.records)-Keep:]...)
	}
	return r, nil
}

// List implements Store.
func (m *Memory) List() ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Record, 0, len(m.records))
	for i := len(m.records) - 1; i >= 0; i-- {
		out = append(out, m.records[i])
	}
	return out, nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
