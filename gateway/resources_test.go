package gateway

import (
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
)

type closer struct{ closed *int }

func (c closer) Close() error { *c.closed++; return nil }

func TestResourcesGenerations(t *testing.T) {
	r := newResources(hclog.NewNullLogger())
	var aClosed, bClosed, cClosed int
	get := func(key string, n *int) io.Closer {
		c, err := r.Get(key, func() (io.Closer, error) { return closer{n}, nil })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r.begin()
	first := get("a", &aClosed)
	get("b", &bClosed)
	r.commit()

	// A build keeps a, drops b, adds c: a is the same resource.
	r.begin()
	if get("a", &aClosed) != first {
		t.Fatal("a was made again instead of kept")
	}
	get("c", &cClosed)
	r.commit()
	if aClosed != 0 || bClosed != 1 || cClosed != 0 {
		t.Fatalf("closed a=%d b=%d c=%d, want 0 1 0", aClosed, bClosed, cClosed)
	}

	// A failed build closes only what it made.
	var dClosed int
	r.begin()
	get("a", &aClosed)
	get("d", &dClosed)
	r.abort()
	if aClosed != 0 || cClosed != 0 || dClosed != 1 {
		t.Fatalf("after abort: a=%d c=%d d=%d, want 0 0 1", aClosed, cClosed, dClosed)
	}
	r.closeAll()
	if aClosed != 1 || cClosed != 1 {
		t.Fatalf("closeAll: a=%d c=%d", aClosed, cClosed)
	}
}
