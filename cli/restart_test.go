package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

func TestRestartProgress(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	req := apitypes.InstanceRestart{Instance: "web-1", Host: "node-1", Generation: 4, RequestedAt: at, PreviousPID: 100, PreviousRestarts: 2}
	seen := func(d time.Duration, gen uint64, pid int, ready bool, process, lastErr string) apitypes.Instance {
		return apitypes.Instance{Name: "web-1", Observed: &apitypes.InstanceState{LastHeartbeat: at.Add(d), RestartGeneration: gen,
			PID: pid, Ready: ready, Process: process, LastError: lastErr}}
	}
	pending := seen(time.Second, 3, 100, true, "running", "replace instance web-1: the new process (pid 101) was not ready within 1m0s; pid 100 serves on")
	pending.Observed.Pending = true
	for _, tc := range []struct {
		name string
		req  apitypes.InstanceRestart
		in   apitypes.Instance
		done bool
		why  string
	}{
		{"never heard of", req, apitypes.Instance{Name: "web-1"}, false, "no heartbeat from the node manager of host node-1 since the restart was asked (last heartbeat: never)"},
		{"heartbeat before the request", req, seen(-time.Second, 4, 101, true, "running", ""), false, "last heartbeat: 2026-12-02T09:59:59Z"},
		{"old process", req, seen(time.Second, 3, 100, true, "running", ""), false, "still a process of restart generation 3 (pid 100)"},
		// Another process, but not the restart's: replaced for something
		// else (a release) before the node manager got the restart.
		{"other new process", req, seen(time.Second, 3, 105, true, "running", ""), false, "still a process of restart generation 3 (pid 105)"},
		{"replacement failed", req, pending, false, "could not replace the process (pid 100 serves on): replace instance web-1"},
		{"new process starting", req, seen(time.Second, 4, 101, false, "running", ""), false, "the new process (pid 101) is not ready: process running"},
		{"new process failing", req, seen(time.Second, 4, 0, false, "backoff", "exit status 1"), false, "is not ready: process backoff, last error: exit status 1"},
		{"ready under the restart's generation", req, seen(time.Second, 4, 101, true, "running", ""), true, ""},
		// The pid may come back the same (reused): the generation says
		// it is another process.
		{"same pid, its generation", req, seen(time.Second, 4, 100, true, "running", ""), true, ""},
		{"a later generation", req, seen(time.Second, 5, 102, true, "running", ""), true, ""},
		{"was not running", apitypes.InstanceRestart{Host: "node-1", Generation: 1, RequestedAt: at}, seen(time.Second, 1, 7, true, "running", ""), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, why := restartProgress(tc.req, tc.in)
			if done != tc.done || !strings.Contains(why, tc.why) || (tc.done && why != "") {
				t.Errorf("got (%v, %q), want (%v, containing %q)", done, why, tc.done, tc.why)
			}
		})
	}
}
