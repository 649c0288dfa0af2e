package pgstore

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// bigConfig is a draft of services × routes routes.
func bigConfig(services, routes int) deploy.Config {
	var cfg deploy.Config
	for s := range services {
		up := fmt.Sprintf("up-%03d", s)
		cfg.Upstreams = append(cfg.Upstreams, deploy.Upstream{Name: up, Targets: []deploy.Target{{Address: fmt.Sprintf("10.0.%d.1:8080", s)}}})
		svc := deploy.Service{Name: fmt.Sprintf("svc-%03d", s), Upstream: up}
		for r := range routes {
			svc.Routes = append(svc.Routes, deploy.Route{Name: fmt.Sprintf("r-%03d-%03d", s, r),
				Paths: []string{fmt.Sprintf("/svc%d/items%d/{id}", s, r)}, Methods: []string{"GET", "PUT"}})
		}
		cfg.Services = append(cfg.Services, svc)
	}
	return cfg
}

// backends are the two stores, each opened empty for b.
var backends = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"bbolt", func(b *testing.B) store.Store {
		s, err := store.Open(filepath.Join(b.TempDir(), "admin.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(b *testing.B) store.Store {
		s, err := Open(ctx, pgtest.Need(b, pg))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

// BenchmarkIngestTraffic stores a node manager's batches of 10 instances
// × 20 routes × 2 classes (400 series), one every 10 s, and reports the
// series stored per second.
func BenchmarkIngestTraffic(b *testing.B) {
	var ss []traffic.DomainSeries
	for i := range 10 {
		for r := range 20 {
			for _, class := range []string{traffic.Class2xx, traffic.Class4xx} {
				ss = append(ss, traffic.DomainSeries{Group: "edge", Instance: fmt.Sprintf("edge-%02d", i),
					Series: traffic.Series{Key: traffic.Key{Service: "svc", Route: fmt.Sprintf("route-%02d", r), Class: class},
						Counts: traffic.Counts{Requests: 50, BytesIn: 500}}})
			}
		}
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	lim := store.TrafficLimits{MaxRoutes: 1000, MaxConsumers: 1000}
	for _, backend := range backends {
		b.Run(backend.name, func(b *testing.B) {
			s := backend.open(b)
			if _, err := s.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
				b.Fatal(err)
			}
			seq := uint64(0)
			for b.Loop() {
				seq++
				at := t0.Add(time.Duration(seq) * 10 * time.Second)
				batch := traffic.Batch{Node: "h1", Seq: seq, Start: at, End: at.Add(10 * time.Second), Series: ss}
				if _, err := s.IngestTraffic(ctx, batch, lim, at); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(ss))/b.Elapsed().Seconds(), "series/s")
		})
	}
}

// BenchmarkFreeze10kRoutes is Freeze of a 10,000-route draft, validated,
// encoded, checksummed and signed inside the store's transaction, on
// bbolt and on PostgreSQL: read and decode the draft, sign, store the
// deployment, commit.
func BenchmarkFreeze10kRoutes(b *testing.B) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, backend := range backends {
		b.Run(backend.name, func(b *testing.B) {
			s := backend.open(b)
			if _, err := s.CreateGroup(ctx, store.Group{Name: "big"}); err != nil {
				b.Fatal(err)
			}
			d, err := s.PutDraft(ctx, "big", bigConfig(100, 100), 0, "admin")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				_, err := s.Freeze(ctx, "big", d.Version, func(d store.Draft, number uint64) (store.Deployment, error) {
					dep, err := deploy.NewDeployment("prod", "big", number, &d.Config, "admin", "bench", time.Now(), nil)
					if err != nil {
						return store.Deployment{}, err
					}
					dep.Sign(key)
					return store.Deployment{Checksum: dep.Checksum, Config: dep.Config, Signature: dep.Signature, Author: dep.Author, CreatedAt: dep.CreatedAt}, nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
