package gateway

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/gateway/gossip"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/policy"
)

// peering is the gateway's membership in its group's gossip
// (docs/gossip.md). It starts with the first keys the node manager sends,
// follows the seeds and keys it sends later, and carries the deployment the
// gateway serves in its metadata.
type peering struct {
	mu     sync.Mutex
	member *gossip.Member
	seeds  []string
	keys   []string
	err    string
	// kick asks metaLoop to push the current metadata: a push waits for
	// the broadcast (up to a second), which must not hold up the
	// deployment watch.
	kick chan struct{}
	// group is the policies' channel to the group, over the member once
	// it has started.
	group groupChannel
	// held keeps the gossip from starting while the gateway process this
	// one took over from still holds the gossip port; pending is the last
	// settings received meanwhile.
	held    bool
	pending *localapi.Gossip
}

// gossipSettings applies the gossip part of a node manager's answer.
func (g *Gateway) gossipSettings(s *localapi.Gossip) {
	if s == nil || g.opts.GossipListen == "" || len(s.Keys) == 0 {
		return
	}
	p := &g.peers
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		p.pending = s
		return
	}
	g.gossipSettingsLocked(s)
}

// releaseGossip lets the gossip start, with the settings received while
// it was held.
func (g *Gateway) releaseGossip() {
	p := &g.peers
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = false
	if p.pending != nil {
		g.gossipSettingsLocked(p.pending)
		p.pending = nil
	}
}

// gossipSettingsLocked is gossipSettings with g.peers.mu held.
func (g *Gateway) gossipSettingsLocked(s *localapi.Gossip) {
	p := &g.peers
	keys := make([][]byte, 0, len(s.Keys))
	for _, k := range s.Keys {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			p.err = fmt.Sprintf("gossip key: %v", err)
			return
		}
		keys = append(keys, b)
	}
	if p.member == nil {
		m, err := gossip.Start(gossip.Config{
			Meta:          g.gossipMeta(),
			BindAddr:      g.opts.GossipListen,
			AdvertiseAddr: g.opts.GossipAdvertise,
			Keys:          keys,
			Seeds:         s.Seeds,
			Logger:        g.logger.Named("gossip"),
			OnChange:      func() { g.remote.reportNow() },
		})
		if err != nil {
			p.err = err.Error()
			g.logger.Error("join the group's gossip", "listen", g.opts.GossipListen, "error", err)
			return
		}
		p.member, p.seeds, p.keys, p.err = m, slices.Clone(s.Seeds), slices.Clone(s.Keys), ""
		p.group.attach(m.Channel())
		p.kick = make(chan struct{}, 1)
		go g.metaLoop(m, p.kick)
		g.logger.Info("gossip started", "listen", g.opts.GossipListen, "address", m.Addr(), "seeds", len(s.Seeds))
		return
	}
	if !slices.Equal(p.seeds, s.Seeds) {
		p.member.SetSeeds(s.Seeds)
		p.seeds = slices.Clone(s.Seeds)
	}
	if !slices.Equal(p.keys, s.Keys) {
		if err := p.member.SetKeys(keys); err != nil {
			p.err = err.Error()
			g.logger.Error("rotate gossip keys", "error", err)
			return
		}
		p.keys = slices.Clone(s.Keys)
	}
}

func (g *Gateway) gossipMeta() gossip.Meta {
	m := gossip.Meta{Instance: g.opts.Instance, Group: g.opts.Group, Deployment: g.deployment.Load(), Status: g.boundAddr("status")}
	if snap := g.proxy.Current(); snap != nil {
		m.Checksum = snap.Checksum
	}
	return m
}

// gossipApplied tells the group what the gateway now serves, without
// waiting.
func (g *Gateway) gossipApplied() {
	p := &g.peers
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kick == nil {
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// metaLoop pushes the metadata when kicked, until kick is closed; kicks
// during a push are one.
func (g *Gateway) metaLoop(m *gossip.Member, kick <-chan struct{}) {
	for range kick {
		if err := m.UpdateMeta(g.gossipMeta()); err != nil {
			g.logger.Warn("push gossip metadata", "error", err)
		}
	}
}

// peerView is the gossip view for reports and /status.
func (g *Gateway) peerView() []gossip.Peer {
	p := &g.peers
	p.mu.Lock()
	m := p.member
	p.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Peers()
}

// leaveGossip leaves the group gracefully: the peers see "left", not a
// failure.
func (g *Gateway) leaveGossip() {
	p := &g.peers
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.member == nil {
		return
	}
	close(p.kick)
	if err := p.member.Leave(2 * time.Second); err != nil {
		g.logger.Warn("leave the group's gossip", "error", err)
	}
	p.member, p.kick = nil, nil
}

// GossipReport is the gossip part of /status.
type GossipReport struct {
	Listen string `json:"listen"`
	// Address is where the peers reach the member (a port 0 in Listen is
	// the real port here); empty until gossip started.
	Address string        `json:"address,omitempty"`
	Error   string        `json:"error,omitempty"`
	Peers   []gossip.Peer `json:"peers"`
}

func (g *Gateway) gossipReport() *GossipReport {
	if g.opts.GossipListen == "" {
		return nil
	}
	g.peers.mu.Lock()
	errText := g.peers.err
	addr := ""
	if g.peers.member != nil {
		addr = g.peers.member.Addr()
	}
	g.peers.mu.Unlock()
	peers := g.peerView()
	if peers == nil {
		peers = []gossip.Peer{}
	}
	return &GossipReport{Listen: g.opts.GossipListen, Address: addr, Error: errText, Peers: peers}
}

// channel is the group channel policies share counts over. Policies are
// built before gossip starts (from the stored deployment), so it is there
// from the start and carries messages once the member is.
func (p *peering) channel() policy.GroupChannel { return &p.group }

// groupChannel is policy.GroupChannel over the gossip member's Channel:
// it holds the subscriptions, so that they outlive a member that starts
// later and can be cancelled when a policy's resources close.
type groupChannel struct {
	mu       sync.RWMutex
	ch       *gossip.Channel
	subs     map[string]map[int]func(from string, msg []byte)
	next     int
	attached map[string]bool
}

// attach starts carrying messages over ch.
func (g *groupChannel) attach(ch *gossip.Channel) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ch = ch
	for topic := range g.subs {
		g.attachTopic(topic)
	}
}

// attachTopic subscribes to topic on the member once; what arrives goes
// to the topic's subscribers of the moment. g.mu is held.
func (g *groupChannel) attachTopic(topic string) {
	if g.ch == nil || g.attached[topic] {
		return
	}
	if g.attached == nil {
		g.attached = map[string]bool{}
	}
	g.attached[topic] = true
	g.ch.Subscribe(topic, func(from string, msg []byte) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		for _, fn := range g.subs[topic] {
			fn(from, msg)
		}
	})
}

// Broadcast implements policy.GroupChannel; before gossip starts there is
// nobody to tell.
func (g *groupChannel) Broadcast(topic string, msg []byte) {
	g.mu.RLock()
	ch := g.ch
	g.mu.RUnlock()
	if ch != nil {
		ch.Broadcast(topic, msg)
	}
}

// Subscribe implements policy.GroupChannel.
func (g *groupChannel) Subscribe(topic string, fn func(from string, msg []byte)) func() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.subs == nil {
		g.subs = map[string]map[int]func(string, []byte){}
	}
	if g.subs[topic] == nil {
		g.subs[topic] = map[int]func(string, []byte){}
	}
	id := g.next
	g.next++
	g.subs[topic][id] = fn
	g.attachTopic(topic)
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.subs[topic], id)
	}
}
