package storetest

import (
	"bytes"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// testReleases: releases keep their bytes exactly; a version is stored
// once; a group pins only a stored release, keeps its pin and rollout
// across UpdateGroup, and a release a group runs or a rollout moves
// between cannot be deleted.
func testReleases(t *testing.T, open Opener) {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "web"}))
	binA := []byte("\x7fELF binary A \x00\xff")
	binB := bytes.Repeat([]byte{0, 1, 2, 0xff}, 1<<18) // 1 MiB
	relA := store.Release{Version: "1.0.0", SHA256: "aa", Size: int64(len(binA)), Signature: []byte{1, 2, 3}, UploadedBy: "admin"}
	run(t, s, []step{
		{"bad version", func(s store.Store) error {
			return ignore(s.PutRelease(ctx, store.Release{Version: "../x"}, binA))
		}, store.ErrInvalid},
		{"put A", func(s store.Store) error { return ignore(s.PutRelease(ctx, relA, binA)) }, nil},
		{"put A again", func(s store.Store) error { return ignore(s.PutRelease(ctx, relA, binB)) }, store.ErrExists},
		{"put B", func(s store.Store) error {
			return ignore(s.PutRelease(ctx, store.Release{Version: "1.1.0", SHA256: "bb", Size: int64(len(binB))}, binB))
		}, nil},
		{"get missing", func(s store.Store) error { return ignore(s.GetRelease(ctx, "9")) }, store.ErrNotFound},
		{"binary missing", func(s store.Store) error { return ignore(s.GetReleaseBinary(ctx, "9")) }, store.ErrNotFound},
		{"pin missing", func(s store.Store) error {
			return ignore(s.UpdateGroupGateway(ctx, "web", func(gw *store.GroupGateway) error { gw.Version = "9"; return nil }))
		}, store.ErrNotFound},
		{"pin of missing group", func(s store.Store) error {
			return ignore(s.UpdateGroupGateway(ctx, "nope", func(gw *store.GroupGateway) error { return nil }))
		}, store.ErrNotFound},
	})
	got := must[store.Release](t)(s.GetRelease(ctx, "1.0.0"))
	if got.SHA256 != "aa" || got.Size != int64(len(binA)) || !bytes.Equal(got.Signature, []byte{1, 2, 3}) || got.UploadedBy != "admin" || got.UploadedAt.IsZero() {
		t.Errorf("release read back as %+v", got)
	}
	for v, want := range map[string][]byte{"1.0.0": binA, "1.1.0": binB} {
		if b := must[[]byte](t)(s.GetReleaseBinary(ctx, v)); !bytes.Equal(b, want) {
			t.Errorf("binary of %s: %d bytes, want %d exactly", v, len(b), len(want))
		}
	}
	if list := must[[]store.Release](t)(s.ListReleases(ctx)); len(list) != 2 || list[0].Version != "1.0.0" || list[1].Version != "1.1.0" {
		t.Errorf("ListReleases: %+v", list)
	}

	// Pin A, then roll out to B.
	g := must[store.Group](t)(s.UpdateGroupGateway(ctx, "web", func(gw *store.GroupGateway) error {
		gw.Version, gw.MaxUnavailable = "1.0.0", 2
		return nil
	}))
	if g.Gateway.Version != "1.0.0" || g.Gateway.MaxUnavailable != 2 || g.Version != 1 {
		t.Errorf("after the pin: %+v (version %d)", g.Gateway, g.Version)
	}
	must[store.Group](t)(s.UpdateGroupGateway(ctx, "web", func(gw *store.GroupGateway) error {
		gw.Version = "1.1.0"
		gw.Rollout = &store.ReleaseRollout{ID: 1, From: "1.0.0", To: "1.1.0", State: store.RolloutRunning, Done: []string{"a"}}
		return nil
	}))
	// UpdateGroup keeps the gateway.
	cur := must[store.Group](t)(s.GetGroup(ctx, "web"))
	cur.Description = "changed"
	g = must[store.Group](t)(s.UpdateGroup(ctx, cur, cur.Version))
	if g.Gateway.Version != "1.1.0" || g.Gateway.Rollout == nil || g.Gateway.Rollout.State != store.RolloutRunning || len(g.Gateway.Rollout.Done) != 1 {
		t.Errorf("UpdateGroup lost the gateway: %+v", g.Gateway)
	}
	run(t, s, []step{
		// A is the rollout's From, B its To and the pinned version.
		{"delete A while rolling from it", func(s store.Store) error { return s.DeleteRelease(ctx, "1.0.0") }, store.ErrInUse},
		{"delete B while pinned", func(s store.Store) error { return s.DeleteRelease(ctx, "1.1.0") }, store.ErrInUse},
		{"rollout done", func(s store.Store) error {
			return ignore(s.UpdateGroupGateway(ctx, "web", func(gw *store.GroupGateway) error {
				gw.Rollout.State = store.RolloutDone
				return nil
			}))
		}, nil},
		{"delete A once unused", func(s store.Store) error { return s.DeleteRelease(ctx, "1.0.0") }, nil},
		{"A is gone", func(s store.Store) error { return ignore(s.GetReleaseBinary(ctx, "1.0.0")) }, store.ErrNotFound},
		{"delete A again", func(s store.Store) error { return s.DeleteRelease(ctx, "1.0.0") }, store.ErrNotFound},
		{"delete B still pinned", func(s store.Store) error { return s.DeleteRelease(ctx, "1.1.0") }, store.ErrInUse},
	})
}
