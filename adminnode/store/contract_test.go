package store_test

import (
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/adminnode/store/storetest"
)

func openBolt(t *testing.T) store.Store {
	t.Helper()
	b, err := store.Open(filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestContract runs the store contract against bbolt.
func TestContract(t *testing.T) { storetest.Run(t, openBolt) }

// TestTrafficContract runs the traffic contract against bbolt.
func TestTrafficContract(t *testing.T) { storetest.RunTraffic(t, openBolt) }
