package auth

import (
	"container/list"
	"time"
)

// table is one of the Limiter's counts: entries by key, kept in the order
// of their last failure so that the expired ones and, when the table is
// full, the least recently failed one are at the front.
type table[V any] struct {
	max    int
	memory time.Duration // an entry expires this long after its last failure
	keys   map[string]*list.Element
	order  *list.List // of *entry[V], oldest last failure first
}

type entry[V any] struct {
	key  string
	last time.Time
	v    V
}

func newTable[V any](max int, memory time.Duration) table[V] {
	return table[V]{max: max, memory: memory, keys: map[string]*list.Element{}, order: list.New()}
}

func (t *table[V]) get(key string) *entry[V] {
	if el, ok := t.keys[key]; ok {
		return el.Value.(*entry[V])
	}
	return nil
}

// touch returns key's entry, made if need be, as failed at now.
func (t *table[V]) touch(key string, now time.Time) *entry[V] {
	if el, ok := t.keys[key]; ok {
		e := el.Value.(*entry[V])
		if now.After(e.last) {
			e.last = now
		}
		t.order.MoveToBack(el)
		return e
	}
	if len(t.keys) >= t.max {
		t.removeElement(t.order.Front())
	}
	e := &entry[V]{key: key, last: now}
	t.keys[key] = t.order.PushBack(e)
	return e
}

func (t *table[V]) remove(key string) {
	if el, ok := t.keys[key]; ok {
		t.removeElement(el)
	}
}

// prune drops, from the front, the entries whose last failure is memory
// old. It stops at the first entry still alive; a later expired one, only
// possible with out-of-order clocks, goes on a later call.
func (t *table[V]) prune(now time.Time) {
	for el := t.order.Front(); el != nil; el = t.order.Front() {
		if now.Sub(el.Value.(*entry[V]).last) < t.memory {
			return
		}
		t.removeElement(el)
	}
}

func (t *table[V]) removeElement(el *list.Element) {
	delete(t.keys, el.Value.(*entry[V]).key)
	t.order.Remove(el)
}

func (t *table[V]) len() int { return len(t.keys) }
