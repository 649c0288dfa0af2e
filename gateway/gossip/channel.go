package gossip

import (
	"bytes"
	"encoding/binary"
	"sync"
)

// Channel carries small messages between the members of the group, best
// effort, by topic: what the gateway's policies exchange (the rate-limit
// policy's counts in group mode). The gateway puts its policies'
// GroupChannel over it.
//
// A message goes straight to every member alive in the view, as one
// encrypted datagram when it fits (memberlist's SendBestEffort) and over
// TCP otherwise, rather than through gossip's piggybacking, which would
// delay it by gossip rounds and spread it to a few members at a time.
type Channel Member

// Channel returns the member's message channel.
func (m *Member) Channel() *Channel { return (*Channel)(m) }

const (
	// msgChannel is the type byte of channel messages, beside msgLeaving
	// and msgLeaveAck.
	msgChannel = 'U'
	// maxDatagram bounds a channel message sent as one datagram:
	// memberlist's UDP budget (UDPBufferSize, 1400 bytes) less the label
	// (at most 257), encryption (at most 45) and its own framing. Larger
	// messages go over TCP.
	maxDatagram = 1024
)

// channelState is the subscriptions of the member's Channel.
type channelState struct {
	mu   sync.RWMutex
	subs map[string][]func(from string, msg []byte)
}

// Subscribe calls fn for every message of topic from another member, on
// memberlist's goroutine: fn must return quickly. msg is fn's own copy.
func (ch *Channel) Subscribe(topic string, fn func(from string, msg []byte)) {
	s := &ch.channel
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[string][]func(string, []byte){}
	}
	s.subs[topic] = append(s.subs[topic], fn)
}

// Broadcast sends msg to every other member alive in the view. It does
// not wait for a TCP send, and drops what cannot be sent (logged at
// debug): messages are best effort.
//
// A message is the type byte, the sender's name and the topic (each a
// uvarint length and bytes), and msg.
func (ch *Channel) Broadcast(topic string, msg []byte) {
	m := (*Member)(ch)
	if m.down.Load() || m.left.Load() {
		return
	}
	name := m.cfg.Meta.Instance
	b := make([]byte, 0, 1+2*binary.MaxVarintLen16+len(name)+len(topic)+len(msg))
	b = append(b, msgChannel)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	b = append(b, msg...)
	for _, n := range m.alivePeers() {
		if len(b) <= maxDatagram {
			if err := m.ml.SendBestEffort(&n, b); err != nil {
				m.logger.Debug("channel message not sent", "peer", n.Name, "topic", topic, "error", err)
			}
			continue
		}
		// Bounded by memberlist's TCP timeout.
		go func() {
			if err := m.ml.SendReliable(&n, b); err != nil {
				m.logger.Debug("channel message not sent", "peer", n.Name, "topic", topic, "error", err)
			}
		}()
	}
}

// deliver hands a channel message (without its type byte) to its topic's
// subscribers. memberlist reuses b after NotifyMsg returns: each
// subscriber gets a copy.
func (m *Member) deliver(b []byte) {
	from, b, ok := cutField(b)
	if !ok {
		return
	}
	topic, b, ok := cutField(b)
	if !ok || string(from) == m.cfg.Meta.Instance {
		return
	}
	s := &m.channel
	s.mu.RLock()
	fns := s.subs[string(topic)]
	s.mu.RUnlock()
	if len(fns) == 0 {
		return
	}
	sender := string(from)
	for _, fn := range fns {
		fn(sender, bytes.Clone(b))
	}
}

// cutField reads a uvarint length and that many bytes.
func cutField(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	end := k + int(n)
	return b[k:end], b[end:], true
}
