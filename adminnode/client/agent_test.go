package client_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitest"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/metrics/traffic"
	"github.com/gatehouse/gatehouse/pki"
)

// TestAgentCalls joins as a node manager would (CA pinned by fingerprint,
// no client certificate) and then calls the agent API with the
// certificate it got.
func TestAgentCalls(t *testing.T) {
	ctx := context.Background()
	hs, root := apitest.AdminNode(t)
	anon, err := client.New(client.Config{Address: hs.URL, CAFingerprint: root.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	login, err := anon.Login(ctx, "admin", password)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(client.Config{Address: hs.URL, Token: login.Token, CACertPEM: root.CertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	jt, err := admin.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	csr, key, err := pki.NewCSR("h1")
	if err != nil {
		t.Fatal(err)
	}
	joined, err := anon.Join(ctx, jt.Token, csr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Join(ctx, jt.Token, csr); !client.IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("second join with the token: %v, want 401", err)
	}
	cert, err := tls.X509KeyPair([]byte(joined.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	node, err := client.New(client.Config{Address: hs.URL, CACertPEM: []byte(joined.CA),
		ClientCertificate: func() (*tls.Certificate, error) { return &cert, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := node.WatchInstances(ctx, nil, 0)
	if err != nil || len(ins.Instances) != 0 || ins.Index == 0 {
		t.Fatalf("WatchInstances = %+v, %v", ins, err)
	}
	same, err := node.WatchInstances(ctx, &ins.Index, 50*time.Millisecond)
	if err != nil || same.Index != ins.Index {
		t.Fatalf("blocking WatchInstances = %+v, %v", same, err)
	}
	if _, err := node.WatchDeployment(ctx, "web", nil, 0); !client.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("deployment of a group without an instance on the host: %v, want 403", err)
	}
	if _, err := node.Heartbeat(ctx, apitypes.AgentHeartbeat{}); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.WatchInstances(ctx, nil, 0); !client.IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("agent call without a certificate: %v, want 401", err)
	}

	// Traffic batches are stored once and read back by a query.
	if _, err := admin.CreateGroup(ctx, apitypes.Group{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateInstance(ctx, apitypes.Instance{Name: "web-1", Group: "web", Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	series := traffic.DomainSeries{Group: "web", Instance: "web-1", Series: traffic.Series{
		Key: traffic.Key{Service: "app", Route: "all", Class: traffic.Class2xx}, Counts: traffic.Counts{Requests: 7}}}
	batch := traffic.Batch{Node: "h1", Seq: 1, End: time.Now(), Series: []traffic.DomainSeries{series}}
	for range 2 {
		if ack, err := node.SendTraffic(ctx, batch); err != nil || ack.Seq != 1 {
			t.Fatalf("SendTraffic = %+v, %v", ack, err)
		}
	}
	if _, err := node.SendTraffic(ctx, traffic.Batch{Node: "h1"}); !client.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("batch without a seq: %v, want 400", err)
	}
	m, err := admin.Metrics(ctx, client.MetricsQuery{Group: "web", Since: 5 * time.Minute, Step: time.Minute, By: apitypes.MetricsByRoute})
	if err != nil || m.Totals.Requests != 7 || m.StepSeconds != 60 || len(m.Breakdown) != 1 || m.Breakdown[0].Route != "all" {
		t.Fatalf("Metrics = %+v, %v", m, err)
	}
}
