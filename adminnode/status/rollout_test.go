package status

import (
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"testing"
	"time"
)

func TestRolloutOf(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	target := Current{Number: 7, Checksum: "sha256:aa"}
	applied := Observation{LastHeartbeat: now, AppliedDeployment: 7, AppliedChecksum: "sha256:aa", Ready: true}
	older := Observation{LastHeartbeat: now, AppliedDeployment: 6, AppliedChecksum: "sha256:66", Ready: true}
	refused := older
	refused.LastError = "deployment 7 refused: validate configuration: plugin \"sig\" not found"
	refusedEarlier := older
	refusedEarlier.LastError = "deployment 5 refused: bad signature"
	refused17 := older
	refused17.LastError = "deployment 17 refused: bad signature"
	lost := applied
	lost.LastHeartbeat = now.Add(-time.Minute)
	lost.AppliedDeployment = 6
	lostAfterApplying := applied
	lostAfterApplying.LastHeartbeat = now.Add(-time.Minute)
	offline := older
	offline.LastHeartbeat = now.Add(-3 * time.Hour)
	notReady := applied
	notReady.Ready = false
	otherBuild := applied
	otherBuild.AppliedChecksum = "sha256:bb"
	// skippedOlder is marked: the last view of a case is skipped when it
	// is this one.
	skippedOlder := older
	skippedOlder.LastError = "deployment 7 refused: needs configuration feature level 2"

	type want struct {
		state   string
		applied int
		each    []string
	}
	for _, tc := range []struct {
		name    string
		current uint64
		obs     []Observation
		want    want
	}{
		{"no instances", 7, nil, want{apitypes.RolloutComplete, 0, nil}},
		{"all applied", 7, []Observation{applied, applied}, want{apitypes.RolloutComplete, 2, []string{apitypes.InstanceApplied, apitypes.InstanceApplied}}},
		{"one still on the older one", 7, []Observation{applied, older}, want{apitypes.RolloutInProgress, 1, []string{apitypes.InstanceApplied, apitypes.InstanceApplying}}},
		{"both refused", 7, []Observation{refused, refused}, want{apitypes.RolloutFailed, 0, []string{apitypes.InstanceRefused, apitypes.InstanceRefused}}},
		{"one refused, one applying", 7, []Observation{refused, older}, want{apitypes.RolloutInProgress, 0, []string{apitypes.InstanceRefused, apitypes.InstanceApplying}}},
		{"an older refusal is not this one's", 7, []Observation{refusedEarlier}, want{apitypes.RolloutInProgress, 0, []string{apitypes.InstanceApplying}}},
		{"17 is not 7", 7, []Observation{refused17}, want{apitypes.RolloutInProgress, 0, []string{apitypes.InstanceApplying}}},
		{"never heard from", 7, []Observation{applied, {}}, want{apitypes.RolloutInProgress, 1, []string{apitypes.InstanceApplied, apitypes.InstancePending}}},
		{"lost connection fails it", 7, []Observation{applied, lost}, want{apitypes.RolloutFailed, 1, []string{apitypes.InstanceApplied, apitypes.InstanceUnreachable}}},
		{"applied, then lost", 7, []Observation{applied, lostAfterApplying}, want{apitypes.RolloutComplete, 2, []string{apitypes.InstanceApplied, apitypes.InstanceApplied}}},
		{"offline, never applied", 7, []Observation{offline}, want{apitypes.RolloutFailed, 0, []string{apitypes.InstanceUnreachable}}},
		{"applied, not ready", 7, []Observation{notReady}, want{apitypes.RolloutInProgress, 0, []string{apitypes.InstanceApplying}}},
		{"same number, other build", 7, []Observation{otherBuild}, want{apitypes.RolloutInProgress, 0, []string{apitypes.InstanceApplying}}},
		{"a newer deployment", 8, []Observation{older}, want{apitypes.RolloutSuperseded, 0, []string{apitypes.InstanceApplying}}},
		{"applied where not skipped", 7, []Observation{applied, skippedOlder}, want{apitypes.RolloutComplete, 1, []string{apitypes.InstanceApplied, apitypes.InstanceSkipped}}},
		{"skipped, the other applying", 7, []Observation{older, skippedOlder}, want{apitypes.RolloutInProgress, 0, []string{apitypes.InstanceApplying, apitypes.InstanceSkipped}}},
		{"skipped, the other refused", 7, []Observation{refused, skippedOlder}, want{apitypes.RolloutFailed, 0, []string{apitypes.InstanceRefused, apitypes.InstanceSkipped}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			views := make([]RolloutView, len(tc.obs))
			for i, o := range tc.obs {
				views[i] = RolloutView{Name: string(rune('a' + i)), Obs: o}
				if o == skippedOlder {
					views[i].Skipped = "needs configuration feature level 2; the gateway has level 1"
				}
			}
			r := DefaultThresholds().RolloutOf(target, tc.current, views, now)
			if r.State != tc.want.state || r.Applied != tc.want.applied || len(r.Instances) != len(tc.want.each) {
				t.Fatalf("rollout = %+v, want %+v", r, tc.want)
			}
			for i, in := range r.Instances {
				if in.State != tc.want.each[i] {
					t.Errorf("instance %s: %s (%s), want %s", in.Name, in.State, in.Reason, tc.want.each[i])
				}
				if in.State != apitypes.InstanceApplied && in.Reason == "" {
					t.Errorf("instance %s is %s with no reason", in.Name, in.State)
				}
			}
			if r.Index == 0 {
				t.Error("index 0")
			}
		})
	}
}

// The index moves with what a watcher sees, and only then.
func TestRolloutIndex(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	target := Current{Number: 2, Checksum: "sha256:aa"}
	obs := Observation{LastHeartbeat: now, AppliedDeployment: 1, Ready: true}
	th := DefaultThresholds()
	a := th.RolloutOf(target, 2, []RolloutView{{Name: "gw", Obs: obs}}, now)
	obs.LastHeartbeat = now.Add(time.Second)
	b := th.RolloutOf(target, 2, []RolloutView{{Name: "gw", Obs: obs}}, now.Add(time.Second))
	if a.Index != b.Index {
		t.Errorf("a newer heartbeat saying the same moved the index")
	}
	obs.AppliedDeployment, obs.AppliedChecksum = 2, "sha256:aa"
	c := th.RolloutOf(target, 2, []RolloutView{{Name: "gw", Obs: obs}}, now)
	if c.Index == a.Index || c.State != apitypes.RolloutComplete {
		t.Errorf("applying did not move the index: %+v", c)
	}
}
