package ratelimit

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// groupConfig syncs only when the test flushes.
const groupConfig = `{"limits": [{"requests": 100, "window": "minute"}], "key": "ip", "mode": "group", "sync_interval": "10s"}`

// instances builds the policy on n instances of one group.
func instances(t *testing.T, h *hub, config string, n int) []policy.Policy {
	var ps []policy.Policy
	for i := range n {
		ps = append(ps, policytest.Build(t, kind, config, env(t, h.member(fmt.Sprintf("gw-%d", i)))))
	}
	return ps
}

// A burst spread over the instances of a group is held to the group's
// limit, give or take what arrives between two syncs.
func TestGroupBurst(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprint(n, " instances"), func(t *testing.T) {
			ps := instances(t, newHub(), groupConfig, n)
			const perSync = 10 // requests reaching each instance between two syncs
			req := from("192.0.2.1")
			allowed := 0
			for round := range 50 {
				now := t0.Add(time.Duration(round) * 100 * time.Millisecond)
				for _, p := range ps {
					allowed += allowedOf(p, req, now, perSync)
				}
				for _, p := range ps {
					storeOf(p).sync.flush()
				}
			}
			t.Logf("%d instances, %d requests each per sync: %d allowed of a limit of 100", n, perSync, allowed)
			// Once the group's total is reached, each instance can still let
			// through what the others counted since their last sync: at most
			// perSync × (n−1) in all, here.
			if limit, slack := 100, perSync*(n-1); allowed < limit || allowed > limit+slack {
				t.Errorf("%d allowed of a limit of 100, want 100 to %d", allowed, limit+slack)
			}
		})
	}
}

// An instance that has not counted a key itself still weighs what the
// others counted, in this window and the previous one.
func TestGroupCountsOfOthers(t *testing.T) {
	ps := instances(t, newHub(), groupConfig, 2)
	req := from("192.0.2.1")
	if n := allowedOf(ps[0], req, t0, 60); n != 60 {
		t.Fatalf("%d allowed, want 60", n)
	}
	storeOf(ps[0]).sync.flush()
	if n := allowedOf(ps[1], req, t0, 100); n != 40 {
		t.Errorf("other instance: %d allowed, want the 40 left", n)
	}
	storeOf(ps[1]).sync.flush()
	// 30 s into the next window: both instances' counts of the previous
	// one weigh half: 50.
	next := t0.Truncate(time.Minute).Add(90 * time.Second)
	if n := allowedOf(ps[0], req, next, 100); n != 50 {
		t.Errorf("next window: %d allowed, want 50", n)
	}
}

// Many keys are sent in several messages, each within the bound.
func TestGroupMessagesSplit(t *testing.T) {
	h := newHub()
	ps := instances(t, h, groupConfig, 2)
	const keys = 500
	for i := range keys {
		addr := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		at(ps[0], &policytest.Request{Addr: addr}, t0)
	}
	storeOf(ps[0]).sync.flush()
	if h.sent < 2 || h.maxSize > maxGroupMsg {
		t.Errorf("%d messages of at most %d bytes, want several of at most %d", h.sent, h.maxSize, maxGroupMsg)
	}
	known := 0
	st := storeOf(ps[1])
	for i := range st.shards {
		for _, e := range st.shards[i].tables[kindIP] {
			if len(e.peers) == 1 && e.peerSlots[0].cur == 1 {
				known++
			}
		}
	}
	if known != keys {
		t.Errorf("other instance knows the counts of %d keys, want %d", known, keys)
	}
	// Nothing counted since: nothing sent.
	sent := h.sent
	storeOf(ps[0]).sync.flush()
	if h.sent != sent {
		t.Error("a flush with nothing new sent messages")
	}
}

// Malformed messages are dropped without harm.
func TestGroupMalformed(t *testing.T) {
	h := newHub()
	ps := instances(t, h, groupConfig, 1)
	g := storeOf(ps[0]).sync.(*groupSync)
	good := []byte{groupVersion, 1, 0, kindNamed, 1, 'k', 0, 1, 0}
	for _, msg := range [][]byte{
		nil,
		{2, 1, 0},
		{groupVersion, 3, 0},
		{groupVersion, 1},
		{groupVersion, 1, 0, kindNamed, 200},
		{groupVersion, 1, 0, 7, 1, 'k', 0, 1, 0},
		{groupVersion, 1, 0, kindNamed, 1, 'k', 0, 0xff},
		{groupVersion, 1, 0, kindIP, 1, 'k', 0, 1, 0},
		good[:len(good)-1],
	} {
		g.receive("gw-9", msg)
	}
	if n := len(storeOf(ps[0]).shards[shardOf(hash("k"))].tables[kindNamed]) + countIPs(storeOf(ps[0])); n != 0 {
		t.Errorf("malformed messages created %d entries", n)
	}
	g.receive("gw-9", good)
	e := storeOf(ps[0]).shards[shardOf(hash("k"))].tables[kindNamed]["k"]
	if e == nil || !bytes.Equal([]byte(e.key), []byte("k")) || e.peerSlots[0].cur != 1 {
		t.Errorf("well-formed message not merged: %+v", e)
	}
}

// Without a group, group mode counts per instance and says so once.
func TestGroupModeStandalone(t *testing.T) {
	var logs bytes.Buffer
	e := env(t, nil)
	e.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs})
	p := policytest.Build(t, kind, groupConfig, e)
	policytest.Build(t, kind, groupConfig, e) // a redeployment
	if n := bytes.Count(logs.Bytes(), []byte("counting per instance")); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, logs.String())
	}
	if n := allowedOf(p, from("192.0.2.1"), t0, 200); n != 100 {
		t.Errorf("%d allowed, want 100", n)
	}
}

// A closed store's counters no longer take messages.
func TestGroupClosed(t *testing.T) {
	h := newHub()
	ps := instances(t, h, groupConfig, 2)
	storeOf(ps[1]).Close()
	allowedOf(ps[0], from("192.0.2.1"), t0, 10)
	storeOf(ps[0]).sync.flush()
	if n := countIPs(storeOf(ps[1])); n != 0 {
		t.Errorf("closed store took %d keys", n)
	}
}

func countIPs(st *store) int {
	n := 0
	for i := range st.shards {
		n += len(st.shards[i].tables[kindIP])
	}
	return n
}
