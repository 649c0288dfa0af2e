package api

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// The store never holds a gossip key in clear, and keys an older gatehouse
// stored in clear still reach the gateways and are sealed on first use.
func TestGossipKeysSealedInStore(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	n := newNode(t, srv.URL, e.ca, &cert)
	e.group("edge", nil)
	e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "i1", Group: "edge", Host: "h1", Listen: ":8080", StatusListen: ":8085"}).
		expect(t, http.StatusCreated, "i1")
	agentKeys := func() []string {
		t.Helper()
		var ins apitypes.AgentInstances
		n.do("GET", "/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &ins)
		if len(ins.Instances) != 1 || ins.Instances[0].Gossip == nil {
			t.Fatalf("instances %+v", ins)
		}
		return ins.Instances[0].Gossip.Keys
	}
	storedSealed := func(want []string) {
		t.Helper()
		g := must[store.Group](t)(e.store.GetGroup(bg, "edge"))
		if len(g.GossipKeys) != len(want) {
			t.Fatalf("stored %d keys, the agent got %d", len(g.GossipKeys), len(want))
		}
		for i, k := range g.GossipKeys {
			clear, _ := base64.StdEncoding.DecodeString(want[i])
			if bytes.Contains(k, clear) {
				t.Errorf("key %d is in clear in the store", i)
			}
			opened, err := e.srv.secretKey.Open(gossipPlace, "edge", k)
			if err != nil || !bytes.Equal(opened, clear) {
				t.Errorf("key %d does not open to what the agent got: %v", i, err)
			}
		}
	}
	storedSealed(agentKeys())

	e.do(e.admin, "POST", "/groups/edge/gossip-key", nil).expect(t, http.StatusOK, "rotate")
	storedSealed(agentKeys())

	legacy := bytes.Repeat([]byte{42}, gossipKeySize)
	must[store.Group](t)(e.store.SetGossipKeys(bg, "edge", [][]byte{legacy}))
	got := agentKeys()
	if len(got) != 1 || got[0] != base64.StdEncoding.EncodeToString(legacy) {
		t.Fatalf("a key stored in clear reached the agent as %v", got)
	}
	storedSealed(got)
}
