package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// testAdminCerts: each admin node's record replaces its earlier one and
// leaves the others'; a record needs a node name.
func testAdminCerts(t *testing.T, open Opener) {
	s := open(t)
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	run(t, s, []step{
		{"no node", func(s store.Store) error { return s.PutAdminCert(ctx, store.AdminCert{DER: []byte{1}}) }, store.ErrInvalid},
		{"a", func(s store.Store) error {
			return s.PutAdminCert(ctx, store.AdminCert{Node: "a/:8090", DER: []byte{1}, RecordedAt: at})
		}, nil},
		{"b", func(s store.Store) error {
			return s.PutAdminCert(ctx, store.AdminCert{Node: "b/:8090", DER: []byte{2}})
		}, nil},
		{"a renewed", func(s store.Store) error {
			return s.PutAdminCert(ctx, store.AdminCert{Node: "a/:8090", DER: []byte{3, 0, 0xff}, RecordedAt: at.Add(time.Hour)})
		}, nil},
	})
	got := must[[]store.AdminCert](t)(s.ListAdminCerts(ctx))
	if len(got) != 2 || got[0].Node != "a/:8090" || !bytes.Equal(got[0].DER, []byte{3, 0, 0xff}) || !got[0].RecordedAt.Equal(at.Add(time.Hour)) ||
		got[1].Node != "b/:8090" || !bytes.Equal(got[1].DER, []byte{2}) || got[1].RecordedAt.IsZero() {
		t.Errorf("admin certificates read back as %+v", got)
	}
}
