package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

func TestRestartProgress(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	req := apitypes.InstanceRestart{Instance: "web-1", Host: "node-1", RequestedAt: at, PreviousPID: 100, PreviousRestarts: 2}
	seen := func(d time.Duration, pid, restarts int, ready bool, process, lastErr string) apitypes.Instance {
		return apitypes.Instance{Name: "web-1", Observed: &apitypes.InstanceState{LastHeartbeat: at.Add(d), PID: pid,
			Restarts: restarts, Ready: ready, Process: process, LastError: lastErr}}
	}
	for _, tc := range []struct {
		name string
		req  apitypes.InstanceRestart
		in   apitypes.Instance
		done bool
		why  string
	}{
		{"never heard of", req, apitypes.Instance{Name: "web-1"}, false, "no heartbeat from the node manager of host node-1 since the restart was asked (last heartbeat: never)"},
		{"heartbeat before the request", req, seen(-time.Second, 101, 3, true, "running", ""), false, "last heartbeat: 2026-12-02T09:59:59Z"},
		{"old process", req, seen(time.Second, 100, 2, true, "running", ""), false, "still the old process (pid 100)"},
		{"new process starting", req, seen(time.Second, 101, 3, false, "running", ""), false, "the new process (pid 101) is not ready: process running"},
		{"new process failing", req, seen(time.Second, 0, 3, false, "backoff", "exit status 1"), false, "is not ready: process backoff, last error: exit status 1"},
		{"ready under a new pid", req, seen(time.Second, 101, 3, true, "running", ""), true, ""},
		// The pid may come back the same (reused); the restart count says
		// it is another process.
		{"same pid, more restarts", req, seen(time.Second, 100, 3, true, "running", ""), true, ""},
		{"was not running", apitypes.InstanceRestart{Host: "node-1", RequestedAt: at}, seen(time.Second, 7, 0, true, "running", ""), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, why := restartProgress(tc.req, tc.in)
			if done != tc.done || !strings.Contains(why, tc.why) || (tc.done && why != "") {
				t.Errorf("got (%v, %q), want (%v, containing %q)", done, why, tc.done, tc.why)
			}
		})
	}
}
