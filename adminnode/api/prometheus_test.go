package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/internal/testaddr"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/metrics"
)

const dashboardFile = "../../docs/grafana/gatehouse-domain.json"

// dashboardExprs returns the PromQL of every panel of the Grafana
// dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

// The dashboard queries only metrics the admin node exposes.
func TestGrafanaDashboardNames(t *testing.T) {
	known := []string{metrics.DomainRequests, metrics.DomainDuration + "_bucket", metrics.DomainBytesIn, metrics.DomainBytesOut,
		metrics.DomainFolded, metrics.AdminTrafficDropped, metrics.AdminTrafficLost}
	names := regexp.MustCompile(`gatehouse_[a-z_]+`)
	exprs := dashboardExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("the dashboard has %d queries", len(exprs))
	}
	for _, e := range exprs {
		for _, name := range names.FindAllString(e, -1) {
			if !slices.Contains(known, name) {
				t.Errorf("the dashboard queries %s, which the admin node does not expose: %s", name, e)
			}
		}
	}
}

// TestPrometheusScrape has Debian's prometheus scrape the admin node over
// HTTPS with an API token, as docs/metrics.md configures it, and checks
// what it stores and that every query of the Grafana dashboard runs. It
// is skipped where prometheus is not installed (apt-get install
// prometheus).
func TestPrometheusScrape(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed")
	}
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	n := newNode(t, srv.URL, e.ca, &cert)
	e.group("edge", nil)
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "i1", Group: "edge", Host: "h1"}))
	seq := uint64(0)
	send := func(ok, failed uint64) {
		t.Helper()
		seq++
		n.do("POST", "/traffic", batchOf("h1", seq, time.Now(), slices.Concat(
			slices.Repeat([]sent{{instance: "i1", route: "r1", status: 200, latency: 20 * time.Millisecond}}, int(ok)),
			slices.Repeat([]sent{{instance: "i1", route: "r1", status: 503, latency: 2 * time.Second}}, int(failed)),
		))).expect(t, http.StatusOK, "batch")
	}
	send(90, 10)

	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	target := strings.TrimPrefix(srv.URL, "https://")
	config := write("prometheus.yml", fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: gatehouse-domain
    scheme: https
    metrics_path: /api/v1/metrics/prometheus
    authorization:
      credentials_file: %s
    tls_config:
      ca_file: %s
    static_configs:
      - targets: [%q]
`, write("token", e.admin), write("ca.crt", string(e.ca.CertPEM())), target))
	web := testaddr.Reserved(t, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus said:\n%s", out)
		}
	}()

	// query runs an instant query and returns its first value, or NaN.
	query := func(expr string) (float64, error) {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(expr))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, err
		}
		if r.Status != "success" {
			return 0, fmt.Errorf("%s: %s", expr, r.Error)
		}
		if len(r.Data.Result) == 0 {
			return 0, errNoData
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	waitFor := func(expr string, want float64) {
		t.Helper()
		end, _ := ctx.Deadline()
		waitfor.Cond(t, time.Until(end), fmt.Sprintf("%s = %v", expr, want), func() (bool, string) {
			got, err := query(expr)
			return err == nil && got == want, fmt.Sprintf("%v (%v)", got, err)
		})
	}
	waitFor(`sum(gatehouse_domain_requests_total{group="edge"})`, 100)
	waitFor(`gatehouse_domain_requests_total{group="edge",service="svc",class="5xx"}`, 10)
	// A second batch a few scrapes later gives rates and quantiles: 200
	// requests, 30 of them 5xx taking 2 s.
	time.Sleep(2 * time.Second)
	send(80, 20)
	waitFor(`sum(gatehouse_domain_requests_total)`, 200)
	p99, err := query(`histogram_quantile(0.99, sum by (le) (increase(gatehouse_domain_request_duration_seconds_bucket[1m])))`)
	if err != nil || p99 <= 1 || p99 > 2.5 {
		t.Errorf("p99 from Prometheus %v (%v), want in the 2 s bucket (1 s, 2.5 s]", p99, err)
	}
	for _, expr := range dashboardExprs(t) {
		expr = strings.NewReplacer("$group", ".*", "$service", ".*", "$__rate_interval", "1m", "$__range", "5m").Replace(expr)
		if _, err := query(expr); err != nil && !errors.Is(err, errNoData) {
			t.Errorf("dashboard query: %v", err)
		}
	}
	if v, err := query(`sum by (group, service) (rate(gatehouse_domain_requests_total{class="5xx"}[1m])) / sum by (group, service) (rate(gatehouse_domain_requests_total[1m]))`); err != nil || v <= 0 || v >= 1 {
		t.Errorf("5xx ratio from Prometheus %v (%v)", v, err)
	}
}

// errNoData is a query that ran and found no series.
var errNoData = errors.New("no data")

// The exposition passes promtool's lint, where promtool is installed.
func TestPrometheusLint(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed")
	}
	e := newEnv(t)
	e.group("edge", nil)
	b := batchOf("h1", 1, e.now, []sent{{instance: "i1", route: "r1", status: 200, latency: time.Millisecond}})
	must[store.TrafficIngest](t)(e.store.IngestTraffic(bg, b, e.srv.traffic, e.now))
	body := e.do(e.admin, "GET", "/metrics/prometheus", nil).expect(t, http.StatusOK, "prometheus").body
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, body)
	}
}
