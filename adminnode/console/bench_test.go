package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// BenchmarkPages serves the overview and the topology of a domain of 200
// instances in 20 groups on 10 hosts over loopback HTTPS, signed in as a
// domain admin, and reports the p99 latency and the page's size.
func BenchmarkPages(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	for h := range 10 {
		if _, err := f.store.CreateHost(ctx, store.Host{Name: fmt.Sprintf("host-%02d", h)}); err != nil {
			b.Fatal(err)
		}
	}
	for g := range 20 {
		name := fmt.Sprintf("group-%02d", g)
		if _, err := f.store.CreateGroup(ctx, store.Group{Name: name, Labels: map[string]string{"team": fmt.Sprint(g % 4)}}); err != nil {
			b.Fatal(err)
		}
		for i := range 10 {
			in := store.Instance{Name: fmt.Sprintf("%s-%d", name, i), Group: name, Host: fmt.Sprintf("host-%02d", i)}
			if _, err := f.store.CreateInstance(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	}
	c := f.browser(b)
	f.signIn(b, c, "admin", password)
	for _, path := range []string{"/ui/", "/ui/topology", "/ui/live/overview", "/ui/live/topology"} {
		b.Run(path, func(b *testing.B) {
			var took []time.Duration
			size := 0
			for b.Loop() {
				start := time.Now()
				resp, err := c.Get(f.srv.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", path, resp.StatusCode)
				}
				took = append(took, time.Since(start))
				size = int(n)
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(size)/1024, "KB")
		})
	}
}
