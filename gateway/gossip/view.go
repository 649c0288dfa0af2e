package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Peer is another member as this one sees it.
type Peer struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	Host  string `json:"host,omitempty"`
	// Address is the peer's gossip address.
	Address string `json:"address"`
	// Status is the address of the peer's status endpoint.
	Status string `json:"status,omitempty"`
	// State is StateAlive, StateDead or StateLeft. memberlist does not
	// expose its "suspect" state: a suspect peer is listed alive until it
	// is declared dead.
	State      string `json:"state"`
	Deployment uint64 `json:"deployment"`
	Checksum   string `json:"checksum,omitempty"`
	// Since is when this member saw the peer enter State.
	Since time.Time `json:"since"`
}

// leaveWindow is how long a peer's leave announcement turns its death
// into a departure.
const leaveWindow = time.Minute

// Peers is every member known but this one, sorted by name: alive ones,
// and dead or left ones for Config.Retention after they went (or until
// they come back, alive again).
func (m *Member) Peers() []Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := time.Now().Add(-m.cfg.Retention)
	out := make([]Peer, 0, len(m.peers))
	for name, e := range m.peers {
		if e.State != StateAlive && e.Since.Before(cutoff) {
			delete(m.peers, name)
			continue
		}
		out = append(out, e.Peer)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// peerEntry is a peer of the view with the address memberlist needs to
// send it a message.
type peerEntry struct {
	Peer
	node memberlist.Node // Name, Addr and Port only
}

// nodeCopy copies what identifies n. The *Node that memberlist hands out
// (events, Members, LocalNode) points into state it changes under its own
// lock: it may be read only inside its callbacks, which hold that lock.
func nodeCopy(n *memberlist.Node) memberlist.Node {
	return memberlist.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port}
}

// alivePeers returns the nodes of the peers alive in the view.
func (m *Member) alivePeers() []memberlist.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []memberlist.Node
	for _, e := range m.peers {
		if e.State == StateAlive {
			out = append(out, e.node)
		}
	}
	return out
}

// record sets the view of node n after a memberlist event. memberlist
// calls its event delegate with its node lock held: nothing here may call
// back into memberlist.
func (m *Member) record(n *memberlist.Node, state string) {
	if n.Name == m.cfg.Meta.Instance {
		m.mu.Lock()
		m.self = n.Address()
		m.mu.Unlock()
		return
	}
	now := time.Now()
	node := nodeCopy(n)
	p := Peer{Name: n.Name, Address: n.Address(), State: state, Since: now}
	if meta, err := decodeMeta(n.Meta); err == nil {
		p.Group, p.Host, p.Status = meta.Group, meta.Host, meta.Status
		p.Deployment, p.Checksum = meta.Deployment, meta.Checksum
	}

	m.mu.Lock()
	if state == StateDead {
		if at, ok := m.leaving[n.Name]; ok && now.Sub(at) < leaveWindow {
			p.State = StateLeft
		}
	}
	if p.State == StateAlive {
		delete(m.leaving, n.Name)
	}
	var old *Peer
	if e := m.peers[n.Name]; e != nil {
		old = &e.Peer
	}
	if old != nil && old.State == p.State {
		p.Since = old.Since
	}
	changed := old == nil || *old != p
	lost := old != nil && old.State == StateAlive && p.State != StateAlive
	if lost {
		m.losses.Add(1)
	}
	m.peers[n.Name] = &peerEntry{Peer: p, node: node}
	if changed && (old == nil || old.State != p.State) && m.cfg.observe != nil {
		m.cfg.observe(p.Name, p.State)
	}
	m.mu.Unlock()
	if lost {
		m.kickSeeds() // a seed joined under another address may be the one lost
	}

	if !changed {
		return
	}
	// Only a change of state is worth telling at once: a peer's new
	// deployment or checksum rides on the next periodic report. Every
	// member applies a deployment at nearly the same moment, and a call
	// per peer's meta update made a group of n send n×(n−1) reports for
	// each deployment.
	if old == nil || old.State != p.State {
		m.signalChange()
	}
	args := []any{"peer", p.Name, "address", p.Address, "deployment", p.Deployment}
	switch {
	case old != nil && old.State == p.State:
		m.logger.Debug("peer meta updated", args...)
	case p.State == StateAlive && old != nil:
		m.logger.Info("peer back", append(args, "was", old.State)...)
	case p.State == StateAlive:
		m.logger.Info("peer joined", args...)
	case p.State == StateLeft:
		m.logger.Info("peer left", args...)
	default:
		m.logger.Warn("peer failed", args...)
	}
}

// peerLeaving records a peer's announcement that it leaves. It normally
// comes before memberlist's leave; if the death came first (the peer did
// not wait for our acknowledgement), it is turned into a departure.
func (m *Member) peerLeaving(name string) {
	now := time.Now()
	m.mu.Lock()
	m.leaving[name] = now
	p := m.peers[name]
	changed := p != nil && p.State == StateDead && now.Sub(p.Since) < leaveWindow
	if changed {
		p.State = StateLeft
		if m.cfg.observe != nil {
			m.cfg.observe(name, StateLeft)
		}
	}
	m.mu.Unlock()
	if changed {
		m.logger.Info("peer left", "peer", name)
		m.signalChange()
	}
}

// User messages between members (memberlist's SendReliable): a type byte
// and the sender's name.
const (
	msgLeaving  = 'L' // "I am leaving": recorded, then acknowledged
	msgLeaveAck = 'A' // "I know you leave"
)

// announceLeave tells every alive peer that this member leaves and waits
// up to wait for their acknowledgements, so that each has recorded it
// before memberlist's leave (a death message) reaches it.
func (m *Member) announceLeave(wait time.Duration) {
	others := m.alivePeers()
	if len(others) == 0 {
		return
	}
	acks := make(chan string, len(others))
	m.mu.Lock()
	m.leaveAcks = acks
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.leaveAcks = nil
		m.mu.Unlock()
	}()

	msg := append([]byte{msgLeaving}, m.cfg.Meta.Instance...)
	pending := map[string]bool{}
	for _, n := range others {
		pending[n.Name] = true
		// Bounded by memberlist's TCP timeout.
		go func() {
			if err := m.ml.SendReliable(&n, msg); err != nil {
				m.logger.Debug("leave announcement not sent", "peer", n.Name, "error", err)
			}
		}()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(pending) > 0 {
		select {
		case name := <-acks:
			delete(pending, name)
		case <-timer.C:
			missing := make([]string, 0, len(pending))
			for name := range pending {
				missing = append(missing, name)
			}
			slices.Sort(missing)
			m.logger.Debug("leave not acknowledged by every peer", "missing", missing)
			return
		}
	}
}

// delegate is the Member as memberlist's Delegate.
type delegate Member

func (d *delegate) NodeMeta(limit int) []byte {
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	if len(d.metaBuf) > limit {
		return nil // not reached: encodeMeta checks the limit
	}
	return slices.Clone(d.metaBuf)
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) < 2 {
		return
	}
	m := (*Member)(d)
	if b[0] == msgChannel {
		m.deliver(b[1:])
		return
	}
	name := string(b[1:])
	switch b[0] {
	case msgLeaving:
		m.peerLeaving(name)
		go m.ackLeave(name)
	case msgLeaveAck:
		m.mu.Lock()
		acks := m.leaveAcks
		m.mu.Unlock()
		if acks != nil {
			select {
			case acks <- name:
			default:
			}
		}
	}
}

func (m *Member) ackLeave(name string) {
	if m.down.Load() {
		return
	}
	for _, n := range m.alivePeers() {
		if n.Name == name {
			if err := m.ml.SendReliable(&n, append([]byte{msgLeaveAck}, m.cfg.Meta.Instance...)); err != nil {
				m.logger.Debug("leave acknowledgement not sent", "peer", name, "error", err)
			}
			return
		}
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events is the Member as memberlist's EventDelegate.
type events Member

func (e *events) NotifyJoin(n *memberlist.Node)   { (*Member)(e).record(n, StateAlive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Member)(e).record(n, StateAlive) }

// NotifyLeave is called for a failure and a departure alike; record tells
// them apart by the peer's leave announcement.
func (e *events) NotifyLeave(n *memberlist.Node) { (*Member)(e).record(n, StateDead) }

// groupCheck refuses members of another group, as memberlist's
// MergeDelegate (joins and push/pull merges) and AliveDelegate (every
// alive message, so that no foreign member slips in through gossip): even
// with a key shared by mistake, two groups never merge.
type groupCheck Member

var errForeign = errors.New("member of another group")

func (g *groupCheck) check(n *memberlist.Node) error {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		return fmt.Errorf("member %s: %w", n.Name, err)
	}
	if meta.Group != g.cfg.Meta.Group {
		return fmt.Errorf("%w: %s is of group %q, this one is %q", errForeign, n.Name, meta.Group, g.cfg.Meta.Group)
	}
	if meta.Instance != n.Name {
		return fmt.Errorf("member %s: its meta names instance %q", n.Name, meta.Instance)
	}
	return nil
}

// NotifyAlive is called for every copy of every alive message, before
// memberlist drops the copies it has seen: a deployment makes each member
// broadcast new meta, and each member gets each of them several times.
// The meta last found to be of this group is remembered per member, so
// that a copy is not decoded again.
func (g *groupCheck) NotifyAlive(n *memberlist.Node) error {
	g.aliveMu.Lock()
	seen := g.aliveOK[n.Name]
	g.aliveMu.Unlock()
	if seen != nil && bytes.Equal(seen, n.Meta) {
		return nil
	}
	if err := g.check(n); err != nil {
		g.logger.Debug("refused an alive message", "error", err)
		return err
	}
	g.aliveMu.Lock()
	g.aliveOK[n.Name] = slices.Clone(n.Meta)
	g.aliveMu.Unlock()
	return nil
}

func (g *groupCheck) NotifyMerge(nodes []*memberlist.Node) error {
	for _, n := range nodes {
		if err := g.check(n); err != nil {
			g.logger.Warn("refused to merge with another cluster", "error", err)
			return err
		}
	}
	return nil
}
