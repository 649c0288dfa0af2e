package gossip

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// inbox collects what a subscriber receives.
type inbox struct {
	mu   sync.Mutex
	msgs []string // "from:topic:msg"
}

func (in *inbox) subscribe(m *Member, topic string) {
	m.Channel().Subscribe(topic, func(from string, msg []byte) {
		in.mu.Lock()
		defer in.mu.Unlock()
		in.msgs = append(in.msgs, from+":"+topic+":"+string(msg))
	})
}

func (in *inbox) has(s string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.msgs {
		if m == s {
			return true
		}
	}
	return false
}

func (in *inbox) all() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.msgs...)
}

// broadcastUntil broadcasts until cond holds: datagrams may be lost.
func broadcastUntil(t *testing.T, m *Member, topic string, msg []byte, what string, cond func() bool) {
	t.Helper()
	waitfor.True(t, 5*time.Second, what, func() bool {
		if cond() {
			return true
		}
		m.Channel().Broadcast(topic, msg)
		return false
	})
}

func TestChannelBroadcast(t *testing.T) {
	ms := cluster(t, 3)
	var a0, a1, a2, b1 inbox
	a0.subscribe(ms[0], "a")
	a1.subscribe(ms[1], "a")
	a2.subscribe(ms[2], "a")
	b1.subscribe(ms[1], "b")

	broadcastUntil(t, ms[0], "a", []byte("hello"), "both others to hear m0", func() bool {
		return a1.has("m0:a:hello") && a2.has("m0:a:hello")
	})
	broadcastUntil(t, ms[2], "b", []byte("other topic"), "m1 to hear m2 on b", func() bool {
		return b1.has("m2:b:other topic")
	})
	for _, s := range a0.all() {
		t.Errorf("m0 heard %q on a: its own or another topic's message", s)
	}
	for _, s := range append(a1.all(), a2.all()...) {
		if s != "m0:a:hello" {
			t.Errorf("heard %q on a", s)
		}
	}
	for _, s := range b1.all() {
		if s != "m2:b:other topic" {
			t.Errorf("heard %q on b", s)
		}
	}
}

// A message too large for one datagram goes over TCP.
func TestChannelLargeMessage(t *testing.T) {
	ms := cluster(t, 2)
	big := bytes.Repeat([]byte("0123456789"), 500)
	var got inbox
	got.subscribe(ms[1], "big")
	before := ms[0].Stats().StreamsOpened
	broadcastUntil(t, ms[0], "big", big, "the large message", func() bool {
		return got.has("m0:big:" + string(big))
	})
	if ms[0].Stats().StreamsOpened == before {
		t.Error("no TCP stream opened for a message larger than a datagram")
	}
}

// A stopped member sends nothing, and malformed messages are dropped.
func TestChannelStoppedAndMalformed(t *testing.T) {
	ms := cluster(t, 2)
	var got inbox
	got.subscribe(ms[1], "t")
	for _, b := range [][]byte{{}, {5, 'm'}, {2, 'm', '0', 9, 't'}, {0xff}} {
		ms[1].deliver(b)
	}
	if msgs := got.all(); len(msgs) != 0 {
		t.Errorf("malformed messages delivered: %q", msgs)
	}
	if err := ms[0].Shutdown(); err != nil {
		t.Fatal(err)
	}
	ms[0].Channel().Broadcast("t", []byte("late"))
	waitfor.Holds(t, 300*time.Millisecond, "no message of the stopped member", func() (bool, string) {
		msgs := got.all()
		return len(msgs) == 0, fmt.Sprintf("delivered: %q", msgs)
	})
}
