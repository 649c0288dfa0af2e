package api

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// TestErrorRates: a soak fails the batch when its new processes answer 5xx
// clearly more often than the instances still on the old release, over
// the same time, and only with enough requests to say; a process that
// changed during the soak counts for nothing.
func TestErrorRates(t *testing.T) {
	names := []string{"a", "b", "c"}
	start := map[string]store.SoakTotal{
		"a": {Boot: "a1", Requests: 100, Errors: 0},
		"b": {Boot: "b1", Requests: 1000, Errors: 10},
		"c": {Boot: "c1", Requests: 1000, Errors: 10},
	}
	at := func(boot string, req, errs uint64) store.InstanceState {
		return store.InstanceState{Boot: boot, Requests: req, Errors: errs}
	}
	tests := []struct {
		name   string
		states map[string]store.InstanceState
		fail   bool
		said   string
	}{
		{"same rate", map[string]store.InstanceState{"a": at("a1", 200, 1), "b": at("b1", 1100, 11), "c": at("c1", 1100, 11)},
			false, "5xx over the soak: 1.0% of 100 requests"},
		{"new errs more", map[string]store.InstanceState{"a": at("a1", 200, 30), "b": at("b1", 1100, 11), "c": at("c1", 1100, 11)},
			true, "30.0% of 100 requests on \"B\", 1.0% of 200 on \"A\": the new release errs more"},
		{"slightly more is fine", map[string]store.InstanceState{"a": at("a1", 200, 3), "b": at("b1", 1100, 11), "c": at("c1", 1100, 11)},
			false, "3.0% of 100"},
		{"too few requests", map[string]store.InstanceState{"a": at("a1", 110, 10), "b": at("b1", 1100, 11)},
			false, ""},
		{"restarted during the soak", map[string]store.InstanceState{"a": at("a2", 500, 400), "b": at("b1", 1100, 11)},
			false, ""},
		{"old ones idle", map[string]store.InstanceState{"a": at("a1", 200, 50), "b": at("b1", 1000, 10), "c": at("c1", 1000, 10)},
			true, "50.0% of 100 requests on \"B\", 0.0% of 0 on \"A\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// a is the batch, b and c still run the old release.
			r := &store.ReleaseRollout{From: "A", To: "B", Batch: []string{"a"}, SoakTotals: start}
			why, summary := errorRates(r, names, tc.states)
			if (why != "") != tc.fail {
				t.Fatalf("errorRates: failed %q, want failure %v", why, tc.fail)
			}
			want := strings.TrimSuffix(tc.said, ": the new release errs more")
			if !strings.Contains(summary, want) || (tc.said == "" && summary != "") {
				t.Errorf("summary %q, want it to say %q", summary, tc.said)
			}
			if tc.fail && !strings.Contains(why, tc.said) {
				t.Errorf("reason %q, want it to say %q", why, tc.said)
			}
		})
	}
}
