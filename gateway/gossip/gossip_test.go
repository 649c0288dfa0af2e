package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// testOutput writes to the test's log until the test ends, and drops
// what goroutines still write after.
type testOutput struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (o *testOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return len(p), nil
	}
	return o.w.Write(p)
}

func testLogger(t testing.TB, name string) hclog.Logger {
	o := &testOutput{w: t.Output()}
	t.Cleanup(func() {
		o.mu.Lock()
		o.done = true
		o.mu.Unlock()
	})
	// GOSSIP_TEST_LOG=debug (or trace) shows more.
	level := hclog.LevelFromString(os.Getenv("GOSSIP_TEST_LOG"))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: o})
}

type opt func(*Config)

func withKeys(keys ...[]byte) opt         { return func(c *Config) { c.Keys = keys } }
func withSeeds(seeds ...string) opt       { return func(c *Config) { c.Seeds = seeds } }
func withOnChange(f func()) opt           { return func(c *Config) { c.OnChange = f } }
func withObserve(f func(n, s string)) opt { return func(c *Config) { c.observe = f } }

// start starts a member on 127.0.0.1 with a free port, shut down at the
// end of the test.
func start(t testing.TB, group, name string, opts ...opt) *Member {
	t.Helper()
	cfg := Config{
		Meta:     Meta{Instance: name, Group: group, Host: "host-" + name, Deployment: 1, Checksum: "sum1", Status: "127.0.0.1:8085"},
		BindAddr: "127.0.0.1:0",
		Keys:     [][]byte{key(1)},
		Logger:   testLogger(t, name),
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

func peer(m *Member, name string) (Peer, bool) {
	for _, p := range m.Peers() {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}

func stateOf(m *Member, name string) string {
	p, _ := peer(m, name)
	return p.State
}

// allSee says whether every member in ms sees name in state.
func allSee(ms []*Member, name, state string) bool {
	for _, m := range ms {
		if stateOf(m, name) != state {
			return false
		}
	}
	return true
}

// cluster starts n members of group "g", each seeded with the first.
func cluster(t testing.TB, n int, opts ...opt) []*Member {
	t.Helper()
	ms := []*Member{start(t, "g", "m0", opts...)}
	for i := 1; i < n; i++ {
		ms = append(ms, start(t, "g", fmt.Sprintf("m%d", i), append(opts, withSeeds(ms[0].Addr()))...))
	}
	waitfor.True(t, 5*time.Second, "the cluster to form", func() bool {
		for _, m := range ms {
			alive := 0
			for _, p := range m.Peers() {
				if p.State == StateAlive {
					alive++
				}
			}
			if alive != n-1 {
				return false
			}
		}
		return true
	})
	return ms
}

func TestJoinMetaAndUpdate(t *testing.T) {
	var changes atomic.Int32
	a := start(t, "g", "a", withOnChange(func() { changes.Add(1) }))
	b := start(t, "g", "b", withSeeds(a.Addr()))
	c := start(t, "g", "c", withSeeds(b.Addr())) // a seed that is not the first
	ms := []*Member{a, b, c}
	waitfor.True(t, 5*time.Second, "three members", func() bool {
		return allSee([]*Member{b, c}, "a", StateAlive) && allSee([]*Member{a, c}, "b", StateAlive) && allSee([]*Member{a, b}, "c", StateAlive)
	})
	if changes.Load() == 0 {
		t.Error("OnChange not called on join")
	}

	got := c.Peers()
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("c's peers = %+v, want a and b (not itself), sorted", got)
	}
	p := got[0]
	if p.Group != "g" || p.Host != "host-a" || p.Deployment != 1 || p.Checksum != "sum1" || p.Status != "127.0.0.1:8085" || p.Address != a.Addr() || p.Since.IsZero() {
		t.Errorf("c sees a as %+v", p)
	}

	cSeen := c.Peers()
	if err := a.UpdateMeta(Meta{Host: "host-a", Deployment: 2, Checksum: "sum2", Status: "127.0.0.1:9999"}); err != nil {
		t.Fatal(err)
	}
	before := changes.Load()
	waitfor.True(t, 3*time.Second, "the meta update to reach b and c", func() bool {
		for _, m := range ms[1:] {
			p, _ := peer(m, "a")
			if p.Deployment != 2 || p.Checksum != "sum2" || p.Status != "127.0.0.1:9999" || p.State != StateAlive {
				return false
			}
		}
		return true
	})
	if cSeen[0].Since != c.Peers()[0].Since {
		t.Errorf("a meta update moved a's Since in c's view: %v, then %v", cSeen[0].Since, c.Peers()[0].Since)
	}
	// b and c now update a's meta in their views; a, which counts, sees
	// their meta unchanged: its count must not move either way. The
	// reverse is checked with b updating.
	bChanges := changes.Load()
	if err := b.UpdateMeta(Meta{Host: "host-b", Deployment: 2, Checksum: "sum2", Status: "127.0.0.1:8085"}); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 3*time.Second, "b's meta update to reach a", func() bool {
		p, _ := peer(a, "b")
		return p.Deployment == 2
	})
	waitfor.Holds(t, 500*time.Millisecond, "no OnChange call for meta updates alone", func() (bool, string) {
		n := changes.Load()
		return n == bChanges && n == before, fmt.Sprintf("%d calls, %d before the updates", n, before)
	})

	if err := a.UpdateMeta(Meta{Group: "other"}); err == nil {
		t.Error("UpdateMeta changed the group")
	}
	if err := a.UpdateMeta(Meta{Checksum: strings.Repeat("x", 600)}); err == nil {
		t.Error("UpdateMeta accepted meta over 512 bytes")
	}
}

func TestStartValidates(t *testing.T) {
	base := func() Config {
		return Config{Meta: Meta{Instance: "a", Group: "g"}, BindAddr: "127.0.0.1:0", Keys: [][]byte{key(1)}}
	}
	cases := map[string]func(*Config){
		"no keys":      func(c *Config) { c.Keys = nil },
		"bad key":      func(c *Config) { c.Keys = [][]byte{[]byte("short")} },
		"no instance":  func(c *Config) { c.Meta.Instance = "" },
		"no group":     func(c *Config) { c.Meta.Group = "" },
		"meta too big": func(c *Config) { c.Meta.Status = strings.Repeat("x", 600) },
		"bad bind":     func(c *Config) { c.BindAddr = "localhost:x" },
		"bad advert":   func(c *Config) { c.AdvertiseAddr = ":7946" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := base()
			edit(&cfg)
			if m, err := Start(cfg); err == nil {
				_ = m.Shutdown()
				t.Fatal("Start accepted it")
			}
		})
	}
}

func TestFailureAndRejoin(t *testing.T) {
	var changes atomic.Int32
	ms := cluster(t, 3, withOnChange(func() { changes.Add(1) }))
	a, b, c := ms[0], ms[1], ms[2]
	oldAddr := c.Addr()

	before := changes.Load()
	killed := time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "a and b to mark m2 dead", func() bool { return allSee([]*Member{a, b}, "m2", StateDead) })
	t.Logf("m2 marked dead everywhere after %s", time.Since(killed).Round(time.Millisecond))
	if changes.Load() == before {
		t.Error("OnChange not called on death")
	}

	// The same instance restarted on another port.
	c2 := start(t, "g", "m2", withSeeds(a.Addr(), b.Addr()))
	if c2.Addr() == oldAddr {
		t.Fatalf("restart got the same address %s", oldAddr)
	}
	waitfor.True(t, 5*time.Second, "m2 alive again everywhere", func() bool {
		return allSee([]*Member{a, b}, "m2", StateAlive) && allSee([]*Member{c2}, "m0", StateAlive) && allSee([]*Member{c2}, "m1", StateAlive)
	})
	if p, _ := peer(a, "m2"); p.Address != c2.Addr() {
		t.Errorf("a sees m2 at %s, want %s", p.Address, c2.Addr())
	}
}

func TestLeaveIsNotAFailure(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	observe := func(name, state string) {
		if name == "m2" {
			mu.Lock()
			seen[state] = true
			mu.Unlock()
		}
	}
	ms := cluster(t, 3, withObserve(observe))
	if err := ms[2].Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 3*time.Second, "m2 left everywhere", func() bool { return allSee(ms[:2], "m2", StateLeft) })
	// Longer than a failure takes to be detected.
	waitfor.Holds(t, 1500*time.Millisecond, "m2 left everywhere", func() (bool, string) {
		return allSee(ms[:2], "m2", StateLeft), fmt.Sprintf("%+v / %+v", ms[0].Peers(), ms[1].Peers())
	})
	mu.Lock()
	defer mu.Unlock()
	if seen[StateDead] {
		t.Error("m2 was seen dead")
	}
	if err := ms[2].UpdateMeta(Meta{Deployment: 3}); err == nil {
		t.Error("UpdateMeta after Leave succeeded")
	}
}

func TestGroupsWithOtherKeysStayApart(t *testing.T) {
	a1 := start(t, "blue", "a1", withKeys(key(1)))
	b1 := start(t, "green", "b1", withKeys(key(2)))
	// Seeds pointing at the other group by mistake.
	a2 := start(t, "blue", "a2", withKeys(key(1)), withSeeds(b1.Addr(), a1.Addr()))
	b2 := start(t, "green", "b2", withKeys(key(2)), withSeeds(a1.Addr(), b1.Addr()))
	waitfor.True(t, 5*time.Second, "each group to form", func() bool {
		return allSee([]*Member{a1}, "a2", StateAlive) && allSee([]*Member{a2}, "a1", StateAlive) &&
			allSee([]*Member{b1}, "b2", StateAlive) && allSee([]*Member{b2}, "b1", StateAlive)
	})
	waitfor.Holds(t, time.Second, "each member seeing its group's other member only", func() (bool, string) {
		for _, m := range []*Member{a1, a2, b1, b2} {
			if ps := m.Peers(); len(ps) != 1 {
				return false, fmt.Sprintf("%s sees %+v", m.cfg.Meta.Instance, ps)
			}
		}
		return true, ""
	})
}

func TestSharedKeyStillRefusesOtherGroup(t *testing.T) {
	// Same key and no group label: only the group check of the merge and
	// alive delegates stands between the two groups.
	noLabel := func(c *Config) { c.noLabel = true }
	a := start(t, "blue", "a", noLabel)
	b := start(t, "green", "b", noLabel)
	if _, err := b.ml.Join([]string{a.Addr()}); err == nil {
		t.Fatal("b joined a cluster of another group")
	} else if !strings.Contains(err.Error(), errForeign.Error()) {
		t.Errorf("join error = %v, want the group refusal", err)
	}
	b.SetSeeds([]string{a.Addr()})
	waitfor.Holds(t, time.Second, "a and b apart", func() (bool, string) {
		return len(a.Peers()) == 0 && len(b.Peers()) == 0, fmt.Sprintf("a sees %+v, b sees %+v", a.Peers(), b.Peers())
	})
	bMeta, _ := encodeMeta(b.cfg.Meta)
	if err := (*groupCheck)(a).check(&memberlist.Node{Name: "b", Meta: bMeta}); !errors.Is(err, errForeign) {
		t.Errorf("check(b) = %v", err)
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	ms := cluster(t, 2)
	x := start(t, "g", "x", withKeys(key(9)), withSeeds(ms[0].Addr()))
	if _, err := x.ml.Join([]string{ms[0].Addr()}); err == nil {
		t.Fatal("a member with the wrong key joined")
	}
	waitfor.Holds(t, time.Second, "x kept out", func() (bool, string) {
		if ps := x.Peers(); len(ps) != 0 {
			return false, fmt.Sprintf("x sees %+v", ps)
		}
		for _, m := range ms {
			if _, ok := peer(m, "x"); ok {
				return false, m.cfg.Meta.Instance + " lists x"
			}
		}
		return true, ""
	})
}

// TestKeyRotation rotates keys as the admin node does: [k1], then
// [k2, k1] delivered to the members one after the other (as node managers
// relay it), then [k2]. k2 encrypts only once every member has it.
func TestKeyRotation(t *testing.T) {
	k1, k2 := key(1), key(2)
	var mu sync.Mutex
	var deaths []string
	observe := func(name, state string) {
		if state != StateAlive {
			mu.Lock()
			deaths = append(deaths, name+" "+state)
			mu.Unlock()
		}
	}
	const switchDelay = time.Second
	delay := func(c *Config) { c.KeySwitchDelay = switchDelay }
	ms := cluster(t, 3, withKeys(k1), withObserve(observe), delay)
	primaries := func(want []byte) bool {
		for _, m := range ms {
			if !bytes.Equal(m.keyring.GetPrimaryKey(), want) {
				return false
			}
		}
		return true
	}

	// A member keeps encrypting with k1 for the switch delay after it got
	// k2: checked whenever the clock, read after the key, proves the delay
	// had not passed yet, so that a slow machine cannot fail it.
	given := make([]time.Time, len(ms))
	keepsK1 := func() (bool, string) {
		for i, m := range ms {
			if given[i].IsZero() {
				continue
			}
			primary := m.keyring.GetPrimaryKey()
			if since := time.Since(given[i]); since < switchDelay && !bytes.Equal(primary, k1) {
				return false, fmt.Sprintf("m%d encrypts with k2 %s after it got it", i, since)
			}
		}
		return true, ""
	}
	for i, m := range ms {
		given[i] = time.Now()
		if err := m.SetKeys([][]byte{k2, k1}); err != nil {
			t.Fatal(err)
		}
		// Staggered delivery.
		waitfor.Holds(t, 300*time.Millisecond, "k1 encrypting until the switch delay", keepsK1)
	}
	waitfor.True(t, 3*time.Second, "k2 to encrypt everywhere", func() bool { return primaries(k2) })
	for _, m := range ms {
		if err := m.SetKeys([][]byte{k2}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ms {
		if got := m.keyring.GetKeys(); len(got) != 1 || !bytes.Equal(got[0], k2) {
			t.Fatalf("keyring = %x, want only k2", got)
		}
	}
	// Longer than a failure takes to be detected.
	waitfor.Holds(t, 1500*time.Millisecond, "every member alive everywhere after the rotation", func() (bool, string) {
		for i, m := range ms {
			for j := range ms {
				if i != j && stateOf(m, fmt.Sprintf("m%d", j)) != StateAlive {
					return false, fmt.Sprintf("m%d sees %+v", i, m.Peers())
				}
			}
		}
		return true, ""
	})
	mu.Lock()
	if len(deaths) > 0 {
		t.Errorf("members failed during rotation: %v", deaths)
	}
	mu.Unlock()

	d := start(t, "g", "d", withKeys(k2), withSeeds(ms[1].Addr()))
	waitfor.True(t, 5*time.Second, "d (only k2) to join", func() bool { return allSee(ms, "d", StateAlive) })
	old := start(t, "g", "old", withKeys(k1))
	if _, err := old.ml.Join([]string{d.Addr()}); err == nil {
		t.Error("a member with the removed key joined")
	}
	if err := ms[0].SetKeys([][]byte{[]byte("bad")}); err == nil {
		t.Error("SetKeys accepted a bad key")
	}
}

func TestSetKeysWithoutDelay(t *testing.T) {
	m := start(t, "g", "a", withKeys(key(1)), func(c *Config) { c.KeySwitchDelay = -1 })
	if err := m.SetKeys([][]byte{key(2), key(1)}); err != nil {
		t.Fatal(err)
	}
	if got := m.keyring.GetKeys(); len(got) != 2 || !bytes.Equal(got[0], key(2)) {
		t.Fatalf("keyring = %x, want k2 then k1", got)
	}
	if err := m.SetKeys([][]byte{key(3)}); err != nil {
		t.Fatal(err)
	}
	if got := m.keyring.GetKeys(); len(got) != 1 || !bytes.Equal(got[0], key(3)) {
		t.Fatalf("keyring = %x, want only k3", got)
	}
}

func TestSeeds(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7000": "127.0.0.1:7000",
		"10.0.0.1":       "10.0.0.1:7946",
		"[::1]:7000":     "[::1]:7000",
	} {
		if got, err := normalizeSeed(in); err != nil || got != want {
			t.Errorf("normalizeSeed(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{":7000", "host:7000", "1.2.3.4:x"} {
		if _, err := normalizeSeed(bad); err == nil {
			t.Errorf("normalizeSeed(%q) accepted it", bad)
		}
	}

	// A member started alone joins seeds given later, including one that
	// only starts after SetSeeds.
	a := start(t, "g", "a")
	b := start(t, "g", "b")
	b.SetSeeds([]string{a.Addr()})
	waitfor.True(t, 3*time.Second, "b to join a through SetSeeds", func() bool { return allSee([]*Member{a}, "b", StateAlive) })
}

// A seed whose member advertises another address than the seed's (bound
// to every interface, it advertises one of them) is joined once, and not
// again every joinLazy while the cluster loses no one: each such join is
// a full state exchange. Once a peer is lost, the seeds are joined again,
// since the lost one may be the seed cut off by a partition.
func TestSeedUnderAnotherAddressIsNotJoinedAgain(t *testing.T) {
	const lazy = 100 * time.Millisecond
	var joins atomic.Int64
	bindAll := func(c *Config) { c.BindAddr, c.AdvertiseAddr = "0.0.0.0:0", "127.0.0.1:0" }
	a := start(t, "g", "a", bindAll)
	_, port, err := net.SplitHostPort(a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// 127.0.0.2 reaches a through the loopback interface, but a advertises
	// 127.0.0.1.
	b := start(t, "g", "b", bindAll, withSeeds("127.0.0.2:"+port), func(c *Config) {
		c.joinLazy = lazy
		c.joined = func(_ string, err error) {
			if err == nil {
				joins.Add(1)
			}
		}
	})
	c := start(t, "g", "c", withSeeds(a.Addr()))
	waitfor.True(t, 5*time.Second, "b to see a and c alive", func() bool {
		return stateOf(b, "a") == StateAlive && stateOf(b, "c") == StateAlive
	})
	if p, _ := peer(b, "a"); p.Address == "127.0.0.2:"+port {
		t.Fatalf("a is listed under its seed's address %s: the test needs another", p.Address)
	}
	n := joins.Load()
	if n == 0 {
		t.Fatal("b did not join its seed")
	}
	waitfor.Holds(t, 10*lazy, "b not to join its seed again", func() (bool, string) {
		return joins.Load() == n, fmt.Sprintf("%d joins", joins.Load())
	})

	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "b to see c dead", func() bool { return stateOf(b, "c") == StateDead })
	waitfor.True(t, 5*time.Second, "b to join its seed again after losing a peer", func() bool { return joins.Load() > n })
}

// NotifyAlive remembers the meta it accepted for each member, so that the
// many copies of one alive message are not decoded again; other meta under
// the same name is checked afresh.
func TestAliveCheckOfCopies(t *testing.T) {
	m := start(t, "g", "m")
	meta := func(instance, group string, deployment uint64) []byte {
		b, err := encodeMeta(Meta{Instance: instance, Group: group, Deployment: deployment})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, step := range []struct {
		what string
		node memberlist.Node
		ok   bool
	}{
		{"first", memberlist.Node{Name: "p", Meta: meta("p", "g", 1)}, true},
		{"a copy", memberlist.Node{Name: "p", Meta: meta("p", "g", 1)}, true},
		{"new deployment", memberlist.Node{Name: "p", Meta: meta("p", "g", 2)}, true},
		{"other group, same name", memberlist.Node{Name: "p", Meta: meta("p", "other", 2)}, false},
		{"other instance in meta", memberlist.Node{Name: "p", Meta: meta("q", "g", 2)}, false},
		{"not JSON", memberlist.Node{Name: "p", Meta: []byte("{")}, false},
		{"accepted meta again", memberlist.Node{Name: "p", Meta: meta("p", "g", 2)}, true},
		{"accepted meta of another name", memberlist.Node{Name: "q", Meta: meta("p", "g", 2)}, false},
	} {
		err := (*groupCheck)(m).NotifyAlive(&step.node)
		if (err == nil) != step.ok {
			t.Errorf("%s: NotifyAlive = %v, want accepted %v", step.what, err, step.ok)
		}
	}
}
