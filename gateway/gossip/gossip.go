package gossip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// DefaultPort is the gossip port (UDP and TCP) of an instance that sets
// none.
const DefaultPort = 7946

// The LAN profile: the defaults of Config's tuning fields. docs/gossip.md
// explains the choice and the detection time it gives.
const (
	DefaultProbeInterval           = 200 * time.Millisecond
	DefaultProbeTimeout            = 100 * time.Millisecond
	DefaultSuspicionMult           = 3
	DefaultSuspicionMaxTimeoutMult = 2
	DefaultGossipInterval          = 200 * time.Millisecond
	DefaultPushPullInterval        = 15 * time.Second
	DefaultRetention               = 24 * time.Hour
	DefaultKeySwitchDelay          = 10 * time.Second

	// gossipToTheDead is how long a dead member still gets gossip (so that
	// one wrongly declared dead hears it and refutes) before memberlist
	// forgets it; the view of Peers keeps it for Retention regardless.
	gossipToTheDead = 30 * time.Second
	// deadNodeReclaim lets an instance restarted with the same name and a
	// new address take its name back as soon as the old one is dead.
	deadNodeReclaim = time.Millisecond
	tcpTimeout      = 2 * time.Second
	// updateTimeout bounds how long UpdateMeta waits for its broadcast.
	updateTimeout = time.Second
)

// States of a Peer.
const (
	StateAlive = "alive"
	StateDead  = "dead" // failed: stopped answering probes
	StateLeft  = "left" // left gracefully (Leave)
)

// Meta is what a member tells the others about itself. It travels
// JSON-encoded as memberlist node metadata, which is limited to 512
// bytes.
type Meta struct {
	Instance   string `json:"instance"`
	Group      string `json:"group"`
	Host       string `json:"host,omitempty"`
	Deployment uint64 `json:"deployment"`
	Checksum   string `json:"checksum,omitempty"`
	// Status is the address of the instance's status endpoint.
	Status string `json:"status,omitempty"`
}

// wireMeta is Meta on the wire: short keys, since meta is in every alive
// message and push/pull exchange.
type wireMeta struct {
	Instance   string `json:"i"`
	Group      string `json:"g"`
	Host       string `json:"h,omitempty"`
	Deployment uint64 `json:"d,omitempty"`
	Checksum   string `json:"c,omitempty"`
	Status     string `json:"s,omitempty"`
}

func encodeMeta(m Meta) ([]byte, error) {
	b, err := json.Marshal(wireMeta(m))
	if err != nil {
		return nil, fmt.Errorf("encode meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("meta is %d bytes encoded, more than memberlist's limit of %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

func decodeMeta(b []byte) (Meta, error) {
	var w wireMeta
	if err := json.Unmarshal(b, &w); err != nil {
		return Meta{}, fmt.Errorf("decode meta: %w", err)
	}
	return Meta(w), nil
}

// Config configures a member.
type Config struct {
	// Meta describes this instance; Meta.Instance is its member name,
	// unique in the domain, and Meta.Group the cluster it joins.
	Meta Meta
	// BindAddr is "IP:port" or ":port" (all interfaces); empty means
	// ":7946". Port 0 picks a free port (tests).
	BindAddr string
	// AdvertiseAddr is the "IP:port" the others reach this member at;
	// empty means the bind address, or a private IP of the host when bound
	// to all interfaces. A port of 0 means the bound port.
	AdvertiseAddr string
	// Keys are the group's gossip keys (16, 24 or 32 bytes: AES-128, -192,
	// -256); the first encrypts, all decrypt. At least one is required:
	// gossip is never in the clear.
	Keys [][]byte
	// Seeds are the "IP:port" gossip addresses of the group's other
	// instances; SetSeeds replaces them.
	Seeds []string
	// Logger gets this package's logs; memberlist's own go to
	// Logger.Named("memberlist") at Debug and Trace.
	Logger hclog.Logger
	// OnChange is called when a peer's state in the view of Peers
	// changes: it joins, dies, leaves or comes back. A change of its meta
	// alone (a new deployment applied) is in Peers without a call, for
	// the next periodic report to carry. Calls are made one at a
	// time from a goroutine of the member, coalesced (one call may stand
	// for several changes), never while a lock of the member is held: it
	// may call Peers.
	OnChange func()

	// Tuning; zero values mean the LAN profile (the Default constants).
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	GossipInterval          time.Duration
	PushPullInterval        time.Duration
	// Retention is how long Peers keeps a dead or left peer (unless it
	// comes back first).
	Retention time.Duration
	// KeySwitchDelay is how long a key given to SetKeys waits before it
	// encrypts: longer than it takes a key change to reach every member
	// of the group. Zero means DefaultKeySwitchDelay; negative, no wait.
	KeySwitchDelay time.Duration

	// Test hooks.
	noLabel  bool                         // share one label across groups, to test the group check
	observe  func(name, state string)     // every state change of a peer's record
	joined   func(seed string, err error) // every join of a seed
	joinLazy time.Duration                // instead of the joinLazy constant
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.BindAddr == "" {
		c.BindAddr = ":" + strconv.Itoa(DefaultPort)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ProbeInterval, DefaultProbeInterval)
	def(&c.ProbeTimeout, DefaultProbeTimeout)
	def(&c.GossipInterval, DefaultGossipInterval)
	def(&c.PushPullInterval, DefaultPushPullInterval)
	def(&c.Retention, DefaultRetention)
	if c.KeySwitchDelay == 0 {
		c.KeySwitchDelay = DefaultKeySwitchDelay
	}
	if c.SuspicionMult <= 0 {
		c.SuspicionMult = DefaultSuspicionMult
	}
	if c.SuspicionMaxTimeoutMult <= 0 {
		c.SuspicionMaxTimeoutMult = DefaultSuspicionMaxTimeoutMult
	}
}

func validateKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("at least one gossip key is required")
	}
	for i, k := range keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
	}
	return nil
}

// splitAddr parses "IP:port", ":port" or "IP" (default port); an empty
// host is returned as "".
func splitAddr(addr string, defPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		if net.ParseIP(addr) == nil {
			return "", 0, fmt.Errorf("address %q: %w", addr, err)
		}
		host, portStr = addr, strconv.Itoa(defPort)
	}
	if host != "" && net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("address %q: %q is not an IP address", addr, host)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("address %q: bad port %q", addr, portStr)
	}
	return host, port, nil
}

// Member is this instance in its group's gossip cluster.
type Member struct {
	cfg       Config
	logger    hclog.Logger
	ml        *memberlist.Memberlist
	keyring   *memberlist.Keyring
	transport *transport

	metaMu  sync.Mutex
	meta    Meta
	metaBuf []byte

	// aliveOK is the meta of each member last accepted by NotifyAlive.
	aliveMu sync.Mutex
	aliveOK map[string][]byte

	mu      sync.Mutex
	self    string // advertised address, from memberlist's event about us
	peers   map[string]*peerEntry
	leaving map[string]time.Time // peers that announced they leave
	// leaveAcks receives the names of peers that acknowledged our leave
	// announcement while Leave waits; nil otherwise.
	leaveAcks chan string

	changed chan struct{} // wakes the OnChange goroutine
	// losses counts peers that went from alive to dead or left: a seed
	// joined before a loss may be what was lost (seeds.go).
	losses   atomic.Uint64
	seeds    seedList
	joinLazy time.Duration
	keys     keyState
	channel  channelState

	stopMu sync.Mutex // serialises Leave and Shutdown
	left   atomic.Bool
	down   atomic.Bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// Start binds the member's address, creates its memberlist and starts
// joining the seeds in the background; it does not wait to join anyone.
func Start(cfg Config) (*Member, error) {
	cfg.setDefaults()
	if cfg.Meta.Instance == "" || cfg.Meta.Group == "" {
		return nil, errors.New("gossip: meta needs the instance and group names")
	}
	if err := validateKeys(cfg.Keys); err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	metaBuf, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	bindIP, bindPort, err := splitAddr(cfg.BindAddr, DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("gossip: bind %w", err)
	}
	if bindIP == "" {
		bindIP = "0.0.0.0"
	}
	keyring, err := memberlist.NewKeyring(cfg.Keys[1:], cfg.Keys[0])
	if err != nil {
		return nil, fmt.Errorf("gossip: keyring: %w", err)
	}

	m := &Member{
		cfg:     cfg,
		logger:  cfg.Logger,
		keyring: keyring,
		meta:    cfg.Meta,
		metaBuf: metaBuf,
		aliveOK: map[string][]byte{},
		peers:   map[string]*peerEntry{},
		leaving: map[string]time.Time{},
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	m.seeds.kick = make(chan struct{}, 1)
	m.joinLazy = joinLazy
	if cfg.joinLazy > 0 {
		m.joinLazy = cfg.joinLazy
	}
	m.keys.installed = map[string]time.Time{}
	for _, key := range cfg.Keys {
		m.keys.installed[string(key)] = time.Time{}
	}
	m.keys.want = slices.Clone(cfg.Keys)
	mlLog := memberlistLogger(cfg.Logger.Named("memberlist"))

	tr, err := newTransport(bindIP, bindPort, mlLog)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	m.transport = tr

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Meta.Instance
	mc.Transport = tr
	mc.BindAddr = bindIP
	mc.BindPort = tr.GetAutoBindPort()
	mc.AdvertisePort = mc.BindPort
	if cfg.AdvertiseAddr != "" {
		ip, port, err := splitAddr(cfg.AdvertiseAddr, mc.BindPort)
		if err != nil || ip == "" {
			_ = tr.Shutdown()
			return nil, fmt.Errorf("gossip: advertise address %q must be IP:port: %v", cfg.AdvertiseAddr, err)
		}
		mc.AdvertiseAddr = ip
		if port != 0 {
			mc.AdvertisePort = port
		}
	}
	if !cfg.noLabel {
		// The label travels outside the encryption and is authenticated by
		// it: traffic of another group is dropped before any decryption.
		mc.Label = "gatehouse/" + cfg.Meta.Group
		if len(mc.Label) > memberlist.LabelMaxSize {
			mc.Label = mc.Label[:memberlist.LabelMaxSize]
		}
	}
	mc.Keyring = keyring
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	// A group's messages are a few hundred bytes: LZW saves little on
	// them, and each compressed message allocated the compressor's tables,
	// whose garbage collection was the larger part of a gateway's CPU, idle
	// or applying a deployment (bench/README.md). Members that still
	// compress are read all the same: compression is marked per message.
	mc.EnableCompression = false
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.SuspicionMaxTimeoutMult = cfg.SuspicionMaxTimeoutMult
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	mc.GossipToTheDeadTime = gossipToTheDead
	mc.DeadNodeReclaimTime = deadNodeReclaim
	mc.TCPTimeout = tcpTimeout
	mc.Delegate = (*delegate)(m)
	mc.Events = (*events)(m)
	mc.Merge = (*groupCheck)(m)
	mc.Alive = (*groupCheck)(m)
	mc.Logger = mlLog

	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("gossip: create memberlist: %w", err)
	}
	m.ml = ml
	m.logger.Info("gossip started", "address", m.Addr(), "group", cfg.Meta.Group, "seeds", len(cfg.Seeds))

	m.wg.Add(2)
	go m.notifyLoop()
	go m.joinLoop()
	m.SetSeeds(cfg.Seeds)
	return m, nil
}

// Addr is the "IP:port" the member advertises: what the others' seeds
// should hold.
func (m *Member) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self
}

// Stats counts what the member sent since it started.
func (m *Member) Stats() Stats { return m.transport.stats() }

// UpdateMeta advertises new meta (a new deployment applied, a new status
// address). Instance and group cannot change; empty ones mean unchanged.
// It returns once the update is broadcast, or after a second: either way
// it reaches everyone through gossip and push/pull.
func (m *Member) UpdateMeta(meta Meta) error {
	if meta.Instance == "" {
		meta.Instance = m.cfg.Meta.Instance
	}
	if meta.Group == "" {
		meta.Group = m.cfg.Meta.Group
	}
	if meta.Instance != m.cfg.Meta.Instance || meta.Group != m.cfg.Meta.Group {
		return fmt.Errorf("gossip: update meta: instance and group cannot change (%s of %s)", m.cfg.Meta.Instance, m.cfg.Meta.Group)
	}
	b, err := encodeMeta(meta)
	if err != nil {
		return fmt.Errorf("gossip: update meta: %w", err)
	}
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	if m.down.Load() || m.left.Load() {
		return errors.New("gossip: update meta: member has stopped")
	}
	m.metaMu.Lock()
	m.meta, m.metaBuf = meta, b
	m.metaMu.Unlock()
	if err := m.ml.UpdateNode(updateTimeout); err != nil {
		// Only a timeout is possible: the update is queued and spreads.
		m.logger.Debug("meta update not yet broadcast", "error", err)
	}
	return nil
}

// SetKeys replaces the gossip keys: every key listed decrypts at once;
// keys[0] becomes the key that encrypts once it has been installed for
// Config.KeySwitchDelay (at once if it was already), so that every member
// of the group has it before anyone encrypts with it; keys no longer
// listed are removed once keys[0] encrypts. A rotation is thus two
// rounds, each delivered to every member: [new, old] (then, after the
// delay, new encrypts), later [new] or [newer, new]. docs/gossip.md.
func (m *Member) SetKeys(keys [][]byte) error {
	if err := validateKeys(keys); err != nil {
		return fmt.Errorf("gossip: set keys: %w", err)
	}
	k := &m.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	for _, key := range keys {
		if _, ok := k.installed[string(key)]; ok {
			continue
		}
		if err := m.keyring.AddKey(key); err != nil {
			return fmt.Errorf("gossip: set keys: install: %w", err)
		}
		k.installed[string(key)] = now
	}
	k.want = slices.Clone(keys)
	return m.applyKeysLocked()
}

// keyState is the keyring's desired state and when each key was
// installed (the zero time for keys given to Start).
type keyState struct {
	mu        sync.Mutex
	installed map[string]time.Time
	want      [][]byte
	switchAt  *time.Timer // pending switch of the primary key
}

// applyKeysLocked makes want[0] the primary key if it has been installed
// long enough, else schedules it, and then removes the keys not wanted.
func (m *Member) applyKeysLocked() error {
	k := &m.keys
	if k.switchAt != nil {
		k.switchAt.Stop()
		k.switchAt = nil
	}
	primary := k.want[0]
	if !bytes.Equal(m.keyring.GetPrimaryKey(), primary) {
		if wait := time.Until(k.installed[string(primary)].Add(m.cfg.KeySwitchDelay)); wait > 0 {
			m.logger.Info("new gossip key installed; it encrypts after a delay", "delay", wait.Round(time.Millisecond))
			k.switchAt = time.AfterFunc(wait, func() {
				k.mu.Lock()
				defer k.mu.Unlock()
				if err := m.applyKeysLocked(); err != nil {
					m.logger.Error("gossip key switch failed", "error", err)
				}
			})
			return nil
		}
		if err := m.keyring.UseKey(primary); err != nil {
			return fmt.Errorf("gossip: set keys: use primary: %w", err)
		}
		m.logger.Info("gossip key switched")
	}
	// RemoveKey edits the keyring's slice in place: iterate over a copy.
	for _, key := range slices.Clone(m.keyring.GetKeys()) {
		if !containsKey(k.want, key) {
			if err := m.keyring.RemoveKey(key); err != nil {
				return fmt.Errorf("gossip: set keys: remove: %w", err)
			}
			delete(k.installed, string(key))
			m.logger.Info("gossip key removed")
		}
	}
	return nil
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if string(x) == string(k) {
			return true
		}
	}
	return false
}

// Leave announces to every peer that this member leaves (so that they
// list it as "left", not "dead"), broadcasts memberlist's leave, and shuts
// down. timeout bounds the whole; after it the member shuts down anyway
// and the error says what did not complete.
func (m *Member) Leave(timeout time.Duration) error {
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	if m.down.Load() {
		return nil
	}
	deadline := time.Now().Add(timeout)
	m.left.Store(true)
	m.announceLeave(min(timeout/2, time.Second))
	err := m.ml.Leave(time.Until(deadline))
	if err != nil {
		err = fmt.Errorf("gossip: leave: %w", err)
	} else {
		m.logger.Info("left the gossip cluster")
	}
	return errors.Join(err, m.shutdownLocked())
}

// Shutdown stops the member without leaving: the others see it fail.
func (m *Member) Shutdown() error {
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	return m.shutdownLocked()
}

func (m *Member) shutdownLocked() error {
	if m.down.Swap(true) {
		return nil
	}
	err := m.ml.Shutdown()
	close(m.done)
	m.keys.mu.Lock()
	if m.keys.switchAt != nil {
		m.keys.switchAt.Stop()
	}
	m.keys.mu.Unlock()
	m.wg.Wait()
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}

func (m *Member) notifyLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.changed:
			if m.cfg.OnChange != nil {
				m.cfg.OnChange()
			}
		case <-m.done:
			return
		}
	}
}

func (m *Member) signalChange() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}
