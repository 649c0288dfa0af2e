package status

import (
	"strings"
	"testing"
	"time"
)

func TestDerive(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	cur := Current{Number: 7, Checksum: "sha256:aa"}
	applied := func(age time.Duration) Observation {
		return Observation{LastHeartbeat: now.Add(-age), AppliedDeployment: 7, AppliedChecksum: "sha256:aa", Ready: true}
	}
	with := func(obs Observation, change func(*Observation)) Observation {
		change(&obs)
		return obs
	}
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name string
		obs  Observation
		cur  Current
		want string
	}{
		{"never heard from", Observation{}, cur, Pending},
		{"never heard from, ready flag set", Observation{Ready: true, AppliedDeployment: 7, AppliedChecksum: "sha256:aa"}, cur, Pending},
		{"fresh and applied", applied(0), cur, Healthy},
		{"heartbeat in the future (clock skew)", applied(-time.Minute), cur, Healthy},
		{"exactly 30 s", applied(30 * time.Second), cur, Healthy},
		{"just over 30 s", applied(30*time.Second + time.Nanosecond), cur, LostConnection},
		{"exactly 2 h", applied(2 * time.Hour), cur, LostConnection},
		{"just over 2 h", applied(2*time.Hour + time.Nanosecond), cur, Offline},
		{"7 days", applied(7 * day), cur, Offline},
		{"8 days", applied(8 * day), cur, Offline},
		{"lost and not applied", with(applied(time.Minute), func(o *Observation) { o.AppliedDeployment = 6 }), cur, LostConnection},
		{"older deployment", with(applied(0), func(o *Observation) { o.AppliedDeployment = 6 }), cur, OnlyHeartbeat},
		{"newer deployment", with(applied(0), func(o *Observation) { o.AppliedDeployment = 8 }), cur, OnlyHeartbeat},
		{"checksum mismatch", with(applied(0), func(o *Observation) { o.AppliedChecksum = "sha256:bb" }), cur, OnlyHeartbeat},
		{"nothing applied", Observation{LastHeartbeat: now, Ready: true}, cur, OnlyHeartbeat},
		{"not ready", with(applied(0), func(o *Observation) { o.Ready = false }), cur, OnlyHeartbeat},
		{"refused a deployment", with(applied(0), func(o *Observation) { o.LastError = "deployment 8 refused: bad signature" }), cur, OnlyHeartbeat},
		{"no deployment yet, ready", Observation{LastHeartbeat: now, Ready: true}, Current{}, Healthy},
		{"no deployment yet, not ready", Observation{LastHeartbeat: now}, Current{}, OnlyHeartbeat},
		{"no deployment yet, runs one from elsewhere", applied(0), Current{}, OnlyHeartbeat},
		{"no deployment yet, lost", Observation{LastHeartbeat: now.Add(-time.Minute), Ready: true}, Current{}, LostConnection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DefaultThresholds().Derive(tc.obs, tc.cur, now); got != tc.want {
				t.Errorf("Derive = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDueForRemoval(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	const week = 7 * 24 * time.Hour
	seen := func(age time.Duration) Observation { return Observation{LastHeartbeat: now.Add(-age)} }
	noRemoval := DefaultThresholds()
	noRemoval.RemoveAfter = 0
	for _, tc := range []struct {
		name string
		t    Thresholds
		obs  Observation
		want bool
	}{
		{"fresh", DefaultThresholds(), seen(0), false},
		{"offline, under 7 days", DefaultThresholds(), seen(3 * time.Hour), false},
		{"exactly 7 days", DefaultThresholds(), seen(week), false},
		{"just over 7 days", DefaultThresholds(), seen(week + time.Nanosecond), true},
		{"never heard from", DefaultThresholds(), Observation{}, false},
		{"removal disabled", noRemoval, seen(100 * week), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.t.DueForRemoval(tc.obs, now); got != tc.want {
				t.Errorf("DueForRemoval = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	d := DefaultThresholds()
	for _, tc := range []struct {
		name string
		t    Thresholds
		want []string // substrings of the error; none: valid
	}{
		{"defaults", d, nil},
		{"removal disabled", Thresholds{LostAfter: d.LostAfter, OfflineAfter: d.OfflineAfter}, nil},
		{"zero lost_after", Thresholds{OfflineAfter: time.Hour}, []string{"lost_after: must be positive (got 0s)"}},
		{"negative lost_after", Thresholds{LostAfter: -time.Second, OfflineAfter: time.Hour}, []string{"lost_after: must be positive"}},
		{"offline_after equal to lost_after", Thresholds{LostAfter: 30 * time.Second, OfflineAfter: 30 * time.Second},
			[]string{"offline_after: must be longer than lost_after (30s)"}},
		{"offline_after shorter", Thresholds{LostAfter: time.Minute, OfflineAfter: time.Second, RemoveAfter: time.Hour},
			[]string{"offline_after: must be longer than lost_after (1m0s)"}},
		{"remove_after equal to offline_after", Thresholds{LostAfter: time.Second, OfflineAfter: time.Hour, RemoveAfter: time.Hour},
			[]string{"remove_after: must be 0 (never) or longer than offline_after (1h0m0s)"}},
		{"negative remove_after", Thresholds{LostAfter: time.Second, OfflineAfter: time.Hour, RemoveAfter: -time.Hour},
			[]string{"remove_after:"}},
		{"everything wrong", Thresholds{RemoveAfter: -1}, []string{"lost_after:", "offline_after:", "remove_after:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("err = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}
