package ratelimit

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/policy"
)

const (
	groupVersion = 1
	// maxGroupMsg bounds a message, so that with the channel's own header
	// it fits one gossip datagram (memberlist's UDP budget is 1400 bytes,
	// less its label, encryption and framing).
	maxGroupMsg = 900
)

// groupSync shares a store's counts with the other instances of the
// group: every flush sends this instance's counts of the keys counted
// since the previous one; what the others send is merged into the store.
//
// A message is: version, the number of windows, each window's current
// number (varint), then records: kind (byte), key (uvarint length and
// bytes), and per window the number relative to the header's (varint),
// this instance's count in it and in the one before (uvarints).
type groupSync struct {
	st     *store
	ch     policy.GroupChannel
	topic  string
	closed atomic.Bool
	cancel func()

	mu      sync.Mutex
	peerIDs map[string]uint16
}

func newGroupSync(st *store, ch policy.GroupChannel, topic string) *groupSync {
	g := &groupSync{st: st, ch: ch, topic: topic, peerIDs: map[string]uint16{}}
	g.cancel = ch.Subscribe(topic, g.receive)
	return g
}

// close stops receiving.
func (g *groupSync) close() {
	g.closed.Store(true)
	g.cancel()
}

func (g *groupSync) flush() {
	now := g.st.now().UnixNano()
	base := make([]int64, len(g.st.windows))
	header := []byte{groupVersion}
	header = binary.AppendUvarint(header, uint64(len(base)))
	for j, w := range g.st.windows {
		base[j] = now / w
		header = binary.AppendVarint(header, base[j])
	}
	msg := append([]byte(nil), header...)
	var ready [][]byte
	g.st.takeDirty(func(e *entry) {
		start := len(msg)
		msg = appendRecord(msg, e, base)
		if len(msg) > maxGroupMsg && start > len(header) {
			next := append(append([]byte(nil), header...), msg[start:]...)
			ready, msg = append(ready, msg[:start]), next
		}
	}, func() {
		for _, m := range ready {
			g.ch.Broadcast(g.topic, m)
		}
		ready = ready[:0]
	})
	if len(msg) > len(header) {
		g.ch.Broadcast(g.topic, msg)
	}
}

func appendRecord(b []byte, e *entry, base []int64) []byte {
	b = append(b, e.kind)
	b = binary.AppendUvarint(b, uint64(len(e.key)))
	b = append(b, e.key...)
	for j := range e.slots {
		s := &e.slots[j]
		b = binary.AppendVarint(b, s.idx-base[j])
		b = binary.AppendUvarint(b, uint64(s.cur))
		b = binary.AppendUvarint(b, uint64(s.prev))
	}
	return b
}

// receive merges a peer's message; it runs on the channel's goroutine and
// only takes shard locks. A malformed message is dropped from where it
// goes wrong.
func (g *groupSync) receive(from string, msg []byte) {
	if g.closed.Load() {
		return
	}
	n := len(g.st.windows)
	d := decoder{b: msg}
	if d.byte() != groupVersion || d.uvarint() != uint64(n) {
		return
	}
	base := make([]int64, n)
	for j := range base {
		base[j] = d.varint()
	}
	id, ok := g.peerID(from)
	if !ok || d.bad {
		return
	}
	counts := make([]peerSlot, n)
	for len(d.b) > 0 {
		kind := int(d.byte())
		key := d.bytes(int(d.uvarint()))
		for j := range counts {
			counts[j] = peerSlot{idx: base[j] + d.varint(), cur: d.count(), prev: d.count()}
		}
		if d.bad || kind >= numKinds || kind == kindIP && len(key) != 16 {
			return
		}
		g.st.heard(kind, key, id, counts)
	}
}

// peerID numbers the instances heard from, so that entries keep two
// bytes per peer rather than its name.
func (g *groupSync) peerID(name string) (uint16, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	id, ok := g.peerIDs[name]
	if !ok {
		if len(g.peerIDs) > math.MaxUint16 {
			return 0, false
		}
		id = uint16(len(g.peerIDs))
		g.peerIDs[name] = id
	}
	return id, true
}

// decoder reads a message; past an error every read returns zero and bad
// is set.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count, which fits an int64.
func (d *decoder) count() int64 {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.bad = true
		return 0
	}
	return int64(v)
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || n > len(d.b) {
		d.bad, d.b = true, nil
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}
