package proxy

import (
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

// bigConfig has n routes over n/10 services, each with its own upstream.
func bigConfig(n int) *deploy.Config {
	cfg := &deploy.Config{}
	for s := 0; s < n/10; s++ {
		name := fmt.Sprintf("svc%d", s)
		cfg.Upstreams = append(cfg.Upstreams, deploy.Upstream{Name: name, Targets: []deploy.Target{{Address: fmt.Sprintf("10.0.%d.%d:8080", s/250, s%250+1)}}})
		svc := deploy.Service{Name: name, Upstream: name}
		for r := 0; r < 10; r++ {
			route := deploy.Route{Name: fmt.Sprintf("%s-r%d", name, r)}
			switch r % 3 {
			case 0:
				route.Paths = []string{fmt.Sprintf("/%s/items/%d", name, r)}
			case 1:
				route.Paths = []string{fmt.Sprintf("/%s/items/{id}/v%d", name, r)}
				route.Methods = []string{"GET"}
			default:
				route.Paths = []string{fmt.Sprintf("/%s/p%d/*", name, r)}
				route.Hosts = []string{fmt.Sprintf("%s.example.com", name)}
			}
			svc.Routes = append(svc.Routes, route)
		}
		cfg.Services = append(cfg.Services, svc)
	}
	return cfg
}

// BenchmarkApply10000 is what a gateway does with a new 10,000-route
// configuration before swapping it in: validate, checksum, build the
// upstreams and compile the snapshot.
func BenchmarkApply10000(b *testing.B) {
	cfg := bigConfig(10000)
	m := metrics.NewGateway(prometheus.NewRegistry(), "bench")
	reg := upstream.NewRegistry(hclog.NewNullLogger())
	defer reg.Close()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := cfg.Validate(catalog.Checker{}); err != nil {
			b.Fatal(err)
		}
		sum, err := cfg.Checksum()
		if err != nil {
			b.Fatal(err)
		}
		ups, err := reg.Update(cfg.Upstreams)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(cfg, sum, ups, m, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile10000 is the compile step alone.
func BenchmarkCompile10000(b *testing.B) {
	cfg := bigConfig(10000)
	m := metrics.NewGateway(prometheus.NewRegistry(), "bench")
	reg := upstream.NewRegistry(hclog.NewNullLogger())
	defer reg.Close()
	ups, err := reg.Update(cfg.Upstreams)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(cfg, "sum", ups, m, nil); err != nil {
			b.Fatal(err)
		}
	}
}
