package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitest"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/metrics/traffic"
	"github.com/gatehouse/gatehouse/pki"
)

// TestMetricsAndTop sends a node manager's batches to a real admin node
// and reads them back with gatehouse metrics and gatehouse top --once.
func TestMetricsAndTop(t *testing.T) {
	ctx := context.Background()
	hs, root := apitest.AdminNode(t)
	anon := must(client.New(client.Config{Address: hs.URL, CACertPEM: root.CertPEM()}))(t)
	login := must(anon.Login(ctx, "admin", adminPassword))(t)
	admin := must(client.New(client.Config{Address: hs.URL, Token: login.Token, CACertPEM: root.CertPEM()}))(t)
	must(admin.CreateGroup(ctx, apitypes.Group{Name: "web"}))(t)
	jt := must(admin.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: "h1"}))(t)
	must(admin.CreateInstance(ctx, apitypes.Instance{Name: "web-1", Group: "web", Host: "h1"}))(t)
	csr, key, err := pki.NewCSR("h1")
	if err != nil {
		t.Fatal(err)
	}
	joined := must(anon.Join(ctx, jt.Token, csr))(t)
	cert, err := tls.X509KeyPair([]byte(joined.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	node := must(client.New(client.Config{Address: hs.URL, CACertPEM: root.CertPEM(),
		ClientCertificate: func() (*tls.Certificate, error) { return &cert, nil }}))(t)

	// A batch every 10 s from two minutes before the minute gatehouse top
	// shows to 20 s after it, so that it shows six of them even if the
	// clock crosses a 10 s boundary or two before it asks: route orders
	// 100 requests a batch, 10 of them 5xx; route health 20.
	end := time.Now().Add(-10 * time.Second).Truncate(10 * time.Second)
	first := end.Add(-2 * time.Minute)
	const batches = 15
	for i := range batches {
		at := first.Add(time.Duration(i) * 10 * time.Second)
		b := traffic.Batch{Node: "h1", Seq: uint64(i + 1), Start: at, End: at.Add(10 * time.Second)}
		for _, s := range []struct {
			route, class string
			n            uint64
			bucket       int
		}{{"orders", traffic.Class2xx, 90, 4}, {"orders", traffic.Class5xx, 10, 9}, {"health", traffic.Class2xx, 20, 0}} {
			ser := traffic.DomainSeries{Group: "web", Instance: "web-1",
				Series: traffic.Series{Key: traffic.Key{Service: "shop", Route: s.route, Class: s.class}}}
			ser.Requests, ser.Latency[s.bucket] = s.n, s.n
			b.Series = append(b.Series, ser)
		}
		if ack, err := node.SendTraffic(ctx, b); err != nil || ack.Seq != uint64(i+1) {
			t.Fatalf("batch %d: %+v, %v", i+1, ack, err)
		}
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ca.pem"), string(root.CertPEM()))
	vars := map[string]string{envConfig: filepath.Join(dir, "cli.json"), envAddr: hs.URL, envToken: login.Token, envCACert: filepath.Join(dir, "ca.pem")}
	e := testEnv(vars, "")
	e.now = time.Now
	cli := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(t, e, args...)
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	var ans apitypes.MetricsAnswer
	from, to := first.Format(time.RFC3339), first.Add(batches*10*time.Second).Format(time.RFC3339)
	if err := json.Unmarshal([]byte(cli("metrics", "--group", "web", "--from", from, "--to", to, "--step", "10s", "-o", "json")), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Totals.Requests != batches*120 || ans.Totals.Status.S5xx != batches*10 || ans.StepSeconds != 10 || len(ans.Points) != batches {
		t.Fatalf("metrics -o json: %+v", ans.Totals)
	}
	// rows returns the words of each line of a table.
	rows := func(out string) map[string][]string {
		m := map[string][]string{}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 {
				m[f[0]+" "+f[1]] = f
			}
		}
		return m
	}
	table := rows(cli("metrics", "--group", "web", "--route", "orders", "--from", from, "--to", to, "--by", "route"))
	if total := table["TOTAL 1500"]; len(total) != 13 || total[7] != "10.0%" {
		t.Errorf("metrics total row %q", total)
	}
	if by := table["shop orders"]; len(by) != 11 || by[4] != "1500" {
		t.Errorf("metrics breakdown row %q", by)
	}

	// Busiest first: orders at 10 req/s with 10% 5xx and p99 in the
	// bucket of its 5xx (250 ms to 500 ms); health at 2 req/s.
	top := cli("top", "--group", "web", "--once")
	lines := strings.Split(top, "\n")
	if !strings.HasPrefix(lines[0], "group web,") || !strings.Contains(lines[0], "12.00 req/s") || !strings.HasPrefix(lines[2], "SERVICE") {
		t.Fatalf("top --once:\n%s", top)
	}
	orders, health := strings.Fields(lines[3]), strings.Fields(lines[4])
	if want := []string{"shop", "orders", "-", "-", "10.00", "0.0%", "10.0%", "7.78ms", "475ms"}; strings.Join(orders, " ") != strings.Join(want, " ") {
		t.Errorf("top row %q, want %q", orders, want)
	}
	if len(health) != 9 || health[1] != "health" || health[4] != "2.00" {
		t.Errorf("top row %q", health)
	}
	if h := rows(cli("host", "list"))["h1 -"]; len(h) != 6 || h[3] == "-" || h[4] != "0" || h[5] != "0" {
		t.Errorf("host list row %q, want the last batch and no losses", h)
	}
	if _, _, err := run(t, e, "top", "--group", "web", "--interval", "0s"); err == nil || !strings.Contains(err.Error(), "--interval") {
		t.Errorf("top --interval 0s: %v", err)
	}
	if _, _, err := run(t, e, "metrics", "--group", "web", "--since", "1h", "--from", "2h"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("metrics --since --from: %v", err)
	}
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
