package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Gossip (docs/gossip.md): the admin node makes each group's keys, tells
// every instance where its peers are, and turns the gossip views the
// instances report into "unreachable by peers" and drift.

const (
	// gossipKeySize is AES-256's.
	gossipKeySize = 32
	// DefaultGossipPort is the first port tried for an instance's gossip.
	DefaultGossipPort = 7946
	// DefaultDriftGrace is how long an instance may run another deployment
	// than the current one before it is flagged: a roll-out takes less.
	DefaultDriftGrace = 60 * time.Second
)

// Peer states as the gateways' gossip reports them (alive, dead, left:
// memberlist does not expose its suspect state, docs/gossip.md).
const (
	peerAlive = "alive"
	peerDead  = "dead"
)

func newGossipKey() ([]byte, error) {
	k := make([]byte, gossipKeySize)
	_, err := rand.Read(k)
	return k, err
}

// gossipKeys returns the group's keys in clear, making the first when the
// group has none (a group created before gossip existed) and sealing those
// an older gatehouse stored in clear. Keys that no longer open (the
// settings key was replaced) are replaced by a new one: gateways take it
// from their next answer, and their gossip heals as they do.
func (s *Server) gossipKeys(ctx context.Context, g store.Group) ([][]byte, error) {
	if len(g.GossipKeys) > 0 {
		keys, legacy, err := s.openGossipKeys(g.Name, g.GossipKeys)
		switch {
		case err == nil && !legacy:
			return keys, nil
		case err == nil:
			if _, err := s.setGossipKeys(ctx, g.Name, keys); err != nil {
				return nil, fmt.Errorf("seal the gossip keys of group %s: %w", g.Name, err)
			}
			return keys, nil
		}
		s.log.Error("gossip keys do not open with the settings key (settings.key replaced?): making a new one", "group", g.Name, "error", err)
	}
	k, err := newGossipKey()
	if err != nil {
		return nil, err
	}
	if _, err := s.setGossipKeys(ctx, g.Name, [][]byte{k}); err != nil {
		return nil, err
	}
	return [][]byte{k}, nil
}

// rotateGossipKey makes a new primary key and keeps the previous primary,
// which gateways still accept while the new one spreads; an older key is
// dropped. Rotating twice, once every gateway uses the new key, retires
// the old one.
func (s *Server) rotateGossipKey(q *request) (any, error) {
	q.auditTarget = "group/" + q.group.Name + "/gossip-key"
	keys, err := s.gossipKeys(q.ctx, *q.group)
	if err != nil {
		return nil, err
	}
	k, err := newGossipKey()
	if err != nil {
		return nil, err
	}
	g, err := s.setGossipKeys(q.ctx, q.group.Name, [][]byte{k, keys[0]})
	if err != nil {
		return nil, err
	}
	q.auditDetail = "new primary gossip key"
	return apitypes.GossipKeyRotation{Group: g.Name, Keys: len(g.GossipKeys)}, nil
}

// gossipPort returns the port of a gossip address, or 0.
func gossipPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// groupGossip is what the instances of one group share: keys and members.
type groupGossip struct {
	keys    []string
	members []store.Instance
	// settings are the group's dynamic settings, read with the keys.
	settings *store.GatewaySettings
}

// gossipOf returns the gossip material of group, reading it once per
// answer however many of the host's instances belong to the group.
func (s *Server) gossipOf(ctx context.Context, group string, all []store.Instance, seen map[string]*groupGossip) (*groupGossip, error) {
	if gg, ok := seen[group]; ok {
		return gg, nil
	}
	g, err := s.store.GetGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	keys, err := s.gossipKeys(ctx, g)
	if err != nil {
		return nil, err
	}
	gg := &groupGossip{keys: make([]string, len(keys)), settings: g.Settings}
	for i, k := range keys {
		gg.keys[i] = base64.StdEncoding.EncodeToString(k)
	}
	for _, in := range all {
		if in.Group == group {
			gg.members = append(gg.members, in)
		}
	}
	seen[group] = gg
	return gg, nil
}

// agentGossip is the gossip settings of one instance: the addresses of
// its group's other instances on hosts whose address is known, and the
// group's keys.
func (s *Server) agentGossip(in store.Instance, gg *groupGossip, addrs map[string]string) *apitypes.AgentGossip {
	out := &apitypes.AgentGossip{Listen: in.GossipListen, Seeds: []string{}, Keys: gg.keys}
	for _, p := range gg.members {
		addr, ok := addrs[p.Host]
		if p.Name == in.Name || !ok || addr == "" || gossipPort(p.GossipListen) == 0 {
			continue
		}
		out.Seeds = append(out.Seeds, net.JoinHostPort(addr, strconv.Itoa(gossipPort(p.GossipListen))))
	}
	return out
}

// unreachable names, for each instance, the peers whose fresh reports
// declare it dead. Reports of instances that are themselves out of touch
// do not count.
func (s *Server) unreachable(states map[string]store.InstanceState, now time.Time) map[string][]string {
	out := map[string][]string{}
	for name, st := range states {
		if st.LastHeartbeat.IsZero() || now.Sub(st.LastHeartbeat) > s.thresholds.LostAfter {
			continue
		}
		for _, p := range st.Peers {
			if p.State == peerDead {
				out[p.Name] = append(out[p.Name], name)
			}
		}
	}
	return out
}

// noteDrift records, at each heartbeat, since when each instance has run
// another deployment than its group's current one. What an instance runs
// is in its own report, and in the gossip view of every peer that sees it
// alive: for a gateway whose node manager is down or cut off from the
// admin node, the peers' word is all there is, and precisely the case of
// an instance left behind on an old deployment. The latest word wins; the
// two agree but for the instant a new deployment spreads, and an
// instance's own report beats its peers' in the same heartbeat.
func (s *Server) noteDrift(ctx context.Context, sts []store.InstanceState, now time.Time) {
	// The domain's instances by name, as the index keeps them: a map of
	// them all made at every heartbeat was most of a heartbeat's cost
	// with a thousand node managers.
	byName, err := s.hosts.named(ctx, s)
	if err != nil {
		return
	}
	group := func(name string) string { return byName[name].Group }
	applied := map[string]uint64{}
	for _, st := range sts {
		for _, p := range st.Peers {
			if p.State == peerAlive && group(p.Name) != "" && group(p.Name) == group(st.Instance) {
				applied[p.Name] = p.Deployment
			}
		}
	}
	for _, st := range sts {
		applied[st.Instance] = st.AppliedDeployment
	}
	for name, n := range applied {
		cur, err := s.current(ctx, group(name))
		if err != nil {
			continue
		}
		s.obs.mu.Lock()
		if cur.Number == 0 || n == cur.Number {
			delete(s.obs.drift, name)
		} else if d, ok := s.obs.drift[name]; !ok || d.current != cur.Number || d.applied != n {
			s.obs.drift[name] = drift{applied: n, current: cur.Number, since: now}
		}
		s.obs.mu.Unlock()
	}
}

// drift is an instance running applied while current is the group's.
type drift struct {
	applied, current uint64
	since            time.Time
}

// drifting returns the instances of views drifting for longer than the
// grace period.
func (s *Server) drifting(views []apitypes.Instance, cur status.Current, now time.Time) []apitypes.Drift {
	out := []apitypes.Drift{}
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	for _, v := range views {
		d, ok := s.obs.drift[v.Name]
		if ok && d.current == cur.Number && now.Sub(d.since) > s.driftGrace {
			out = append(out, apitypes.Drift{Instance: v.Name, Deployment: d.applied, Since: d.since})
		}
	}
	return out
}
