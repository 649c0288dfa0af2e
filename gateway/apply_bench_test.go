package gateway

import (
	"crypto/ed25519"
	"testing"

	"github.com/gatehouse/gatehouse/deploy"
)

// BenchmarkReceiveDeployment is a gateway under a node manager applying a
// small signed deployment, from the signature check to the stored and
// swapped configuration (bbolt fsync included): the gateway's share of a
// deployment's propagation (bench/README.md).
func BenchmarkReceiveDeployment(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(Options{
		Instance: testInstance, Group: testGroup, DataDir: b.TempDir(),
		NodeManager: "http://127.0.0.1:9", DomainKey: pub, InstanceSecret: testSecret,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Load(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.registry.Close(); g.store.Close() })
	ds := make([]*deploy.Deployment, b.N)
	for i := range ds {
		ds[i] = signed(b, priv, testGroup, uint64(i+1))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, d := range ds {
		if err := g.receive(d); err != nil {
			b.Fatal(err)
		}
	}
}
