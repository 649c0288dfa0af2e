package supervisor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pidFilePID is the pid the instance's pid file names.
func (h *harness) pidFilePID(name string) int {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.drv.InstanceDir(name), PidFileName))
	if err != nil {
		h.t.Fatal(err)
	}
	var rec pidRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		h.t.Fatal(err)
	}
	return rec.PID
}

// TestReplace: with ZeroDowntime, new flags and Restart start the new
// process beside the old one (with --takeover) and take it on once the
// old one has exited; a new process that exits first, or is not ready in
// time, is given up and the old one stays, with the reason shown.
func TestReplace(t *testing.T) {
	tests := []struct {
		name string
		// extra are the new spec's arguments; restart uses Restart
		// instead of new flags.
		extra   []string
		restart bool
		ok      bool
		errText string
		// gone is what the log shows of the new process's end.
		gone string
		// initial are the first spec's extra arguments (default --flag 1).
		initial []string
	}{
		{name: "new flags", extra: []string{"--flag", "2"}, ok: true},
		{name: "restart", restart: true, ok: true},
		// The old process takes longer to drain than the readiness
		// timeout: the new one, serving, is kept, and the old one is
		// stopped after the drain timeout.
		{name: "old process drains long", initial: []string{"--ignore-term"}, extra: []string{"--ignore-term", "--flag", "2"}, ok: true},
		{name: "new process exits", extra: []string{"--exit", "3"}, errText: "exited before it was ready (exit status 3)", gone: "fakegw: exiting with 3"},
		{name: "new process never ready", extra: []string{"--not-ready"}, errText: "was not ready within 700ms", gone: "fakegw: SIGTERM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "", Options{ZeroDowntime: true, ReadyTimeout: 700 * time.Millisecond, DrainTimeout: time.Second}, ExecOptions{})
			initial := tc.initial
			if initial == nil {
				initial = []string{"--flag", "1"}
			}
			h.reconcile(spec("gw", initial...))
			old := h.up("gw")
			killLater(t, old.PID)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var err error
			if tc.restart {
				err = h.sup.Restart(ctx, "gw")
			} else {
				err = h.sup.Reconcile(ctx, []Spec{spec("gw", tc.extra...)})
			}
			st, _ := h.sup.State("gw")
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("replace: %v, want an error saying %q", err, tc.errText)
				}
				if st.PID != old.PID || st.Process != StateRunning || !strings.Contains(st.LastError, tc.errText) {
					t.Errorf("after a failed replacement: %+v, want pid %d running with the error", st, old.PID)
				}
				if !alive(old.PID) {
					t.Errorf("the old process (pid %d) is gone", old.PID)
				}
				if got := h.pidFilePID("gw"); got != old.PID {
					t.Errorf("pid file names %d, want the old process %d", got, old.PID)
				}
				// The new process is not left behind.
				h.wait("the new process gone", func() bool {
					return strings.Contains(readLog(t, h.drv.LogPath("gw")), tc.gone)
				})
				if st.WantHash != spec("gw", tc.extra...).Hash() || st.WantHash == st.SpecHash {
					t.Errorf("after a failed replacement: want %q, runs %q: the instance must show it is not as desired", st.WantHash, st.SpecHash)
				}
				// The same spec again, at once: not tried again (it would
				// hold the next desired instances for ReadyTimeout).
				err = h.sup.Reconcile(ctx, []Spec{spec("gw", tc.extra...)})
				if err == nil || !strings.Contains(err.Error(), "not tried again") || !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("the failed spec again: %v, want it not tried again, with the failure", err)
				}
				if st, _ := h.sup.State("gw"); st.PID != old.PID {
					t.Errorf("the failed spec again: pid %d, want %d", st.PID, old.PID)
				}
				// Back to what runs: nothing pending, no error; the failed
				// spec given after that is tried again.
				if err := h.sup.Reconcile(ctx, []Spec{spec("gw", initial...)}); err != nil {
					t.Fatalf("back to the running spec: %v", err)
				}
				if st, _ := h.sup.State("gw"); st.WantHash != st.SpecHash || st.LastError != "" {
					t.Errorf("back to the running spec: %+v", st)
				}
				err = h.sup.Reconcile(ctx, []Spec{spec("gw", tc.extra...)})
				if err == nil || strings.Contains(err.Error(), "not tried again") || !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("the failed spec after going back: %v, want it tried and failing again", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("replace: %v", err)
			}
			if st.PID == old.PID || st.PID == 0 || st.Process != StateRunning || st.Restarts != 1 || st.LastError != "" {
				t.Errorf("after the replacement: %+v, want a new pid running, one restart", st)
			}
			if alive(old.PID) {
				t.Errorf("the old process (pid %d) still runs", old.PID)
			}
			if got := h.pidFilePID("gw"); got != st.PID {
				t.Errorf("pid file names %d, want the new process %d", got, st.PID)
			}
			log := readLog(t, h.drv.LogPath("gw"))
			if !strings.Contains(log, `"--takeover"`) || !strings.Contains(log, "took over from pid") {
				t.Errorf("the new process was not started with --takeover:\n%s", log)
			}
		})
	}
}
