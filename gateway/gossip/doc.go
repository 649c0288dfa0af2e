// Package gossip makes the gateways of a group one cluster
// (hashicorp/memberlist, SWIM with Lifeguard): each instance learns the
// others, their meta (instance, group, host, applied deployment and
// checksum, status address) and their failures, without the node manager
// or the admin node in the path. docs/gossip.md describes the protocol
// settings, the key rotation procedure and the measured figures.
//
//	m, err := gossip.Start(gossip.Config{
//		Meta:     gossip.Meta{Instance: "web-1-a", Group: "payments", Host: "web-1", Status: "10.0.0.5:8085"},
//		BindAddr: ":7946",
//		Keys:     [][]byte{groupKey},              // first encrypts, all decrypt
//		Seeds:    []string{"10.0.0.6:7946"},        // the group's other instances
//		Logger:   logger,
//		OnChange: func() { report(m.Peers()) },
//	})
//	m.UpdateMeta(meta)   // after applying a deployment
//	m.SetSeeds(seeds)    // instances added or removed
//	m.SetKeys(keys)      // key rotation, one round of three
//	m.Peers()            // for /status and the node manager
//	m.Leave(5 * time.Second) // graceful stop: "left", not "dead"
//
// What the package adds to memberlist:
//
//   - Encryption is mandatory (Keys, AES-GCM) and every packet and stream
//     carries the label "gatehouse/<group>", authenticated by the
//     encryption: traffic of another group is dropped unread. Members whose
//     meta names another group are refused besides (merge and alive
//     delegates), so even a key shared by mistake never merges two groups.
//   - A view of the peers that outlives memberlist's: a dead or left peer
//     stays listed (Peers) for Config.Retention (24 h) unless it comes
//     back, when it is alive again, so that an unreachable instance can be
//     shown and cleared.
//   - Dead versus left: memberlist reports both alike. Leave first tells
//     every peer, over TCP, that the member leaves, and waits for their
//     acknowledgements before memberlist's own leave; a peer that hears of
//     the departure records it as "left".
//   - Seeds are joined in the background and joined again with backoff
//     while they are not members (a restarted instance, a healed
//     partition).
//   - Byte counters on the transport (Stats).
//
// memberlist's "suspect" state is not exposed by its API: a suspect peer
// is listed alive until it is declared dead (by default within about a
// second).
//
// The *memberlist.Node values memberlist hands out point into state it
// changes under its own lock; this package copies what it needs inside
// memberlist's callbacks and never reads them elsewhere.
package gossip
