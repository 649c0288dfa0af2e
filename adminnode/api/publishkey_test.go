package api

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/pubseal"
)

// The domain's publish keys are made once, kept sealed in the store, sent
// to node managers with their instances and exported to domain admins
// (audited); a rotation puts a new key first and keeps the previous one.
func TestPublishKeys(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	n := newNode(t, srv.URL, e.ca, &cert)
	agentKeys := func() [][]byte {
		t.Helper()
		var ins apitypes.AgentInstances
		n.do("GET", "/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &ins)
		return ins.PublishKeys
	}
	exported := func() apitypes.PublishKeyExport {
		t.Helper()
		var out apitypes.PublishKeyExport
		e.do(e.admin, "POST", "/publish-key/export", nil).expect(t, http.StatusOK, "export").decode(t, &out)
		return out
	}
	storedSealed := func(want [][]byte) {
		t.Helper()
		d := must[store.Domain](t)(e.store.GetDomain(bg))
		if len(d.PublishKeys) != len(want) {
			t.Fatalf("stored %d keys, want %d", len(d.PublishKeys), len(want))
		}
		for i, k := range d.PublishKeys {
			if bytes.Contains(k, want[i]) {
				t.Errorf("publish key %d is in clear in the store", i)
			}
		}
	}

	if keys := agentKeys(); len(keys) != 0 {
		t.Fatalf("an answer made publish keys: %q", keys)
	}
	must[[]*pubseal.Key](t)(e.srv.PublishKeys(bg)) // as the admin node's start does
	first := agentKeys()
	if len(first) != 1 || len(first[0]) != pubseal.KeySize {
		t.Fatalf("node manager's publish keys %q", first)
	}
	if again := agentKeys(); len(again) != 1 || !bytes.Equal(again[0], first[0]) {
		t.Fatal("a second answer made another key")
	}
	storedSealed(first)
	ex := exported()
	k, _ := pubseal.ParseKey(first[0])
	if ex.Domain != e.srv.domain.Name || len(ex.Keys) != 1 || !bytes.Equal(ex.Keys[0], first[0]) || ex.IDs[0] != k.ID {
		t.Fatalf("export %+v", ex)
	}

	var rot apitypes.PublishKeyRotation
	e.do(e.admin, "POST", "/publish-key/rotate", nil).expect(t, http.StatusOK, "rotate").decode(t, &rot)
	rotated := agentKeys()
	if len(rotated) != 2 || bytes.Equal(rotated[0], first[0]) || !bytes.Equal(rotated[1], first[0]) {
		t.Fatalf("keys after a rotation: new first, previous kept: %q (was %q)", rotated, first)
	}
	if len(rot.IDs) != 2 || rot.IDs[1] != k.ID {
		t.Errorf("rotation %+v", rot)
	}
	storedSealed(rotated)
	if ex := exported(); len(ex.Keys) != 2 || !bytes.Equal(ex.Keys[0], rotated[0]) {
		t.Errorf("export after a rotation %+v", ex)
	}

	var audit []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit", nil).expect(t, http.StatusOK, "audit").decode(t, &audit)
	actions := map[string]int{}
	for _, a := range audit {
		actions[a.Action]++
		if strings.Contains(a.Detail, string(first[0])) {
			t.Errorf("the audit log holds a key: %+v", a)
		}
	}
	if actions["publish-key.export"] != 2 || actions["publish-key.rotate"] != 1 {
		t.Errorf("audited %v, want 2 exports and 1 rotation", actions)
	}
}
