package localdomain

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// Host is a host joined to the domain: its node manager's data dir, the
// address of its local API and, once started, its process.
type Host struct {
	Name, Dir, Local string
	Node             *Proc
}

// Instances asks the host's node manager for its instances.
func (h *Host) Instances(ctx context.Context, hc *http.Client) ([]localapi.InstanceView, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+h.Local+localapi.PathInstances, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var l localapi.InstanceList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, err
	}
	return l.Instances, nil
}

// GatewayLog is the log file of the host's gateway instance; "*" makes
// it a pattern of them all.
func (h *Host) GatewayLog(instance string) string {
	return filepath.Join(h.Dir, "instances", instance, "gateway.log")
}

// ScanGatewayLog calls fn with each line of a gateway's log that holds
// substr, split into its time stamp and the rest, until fn says stop.
// Lines are like
//
//	2026-11-23T20:21:56.495Z [INFO]  gateway: deployment applied: number=4 …
//
// A log that cannot be read has no lines.
func ScanGatewayLog(path, substr string, fn func(at time.Time, rest string) (more bool)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		stamp, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.Contains(rest, substr) {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		if !fn(at, rest) {
			return
		}
	}
}

// gatewayPIDs returns the host's running gateways, from their pid files.
func (h *Host) gatewayPIDs() []int {
	files, _ := filepath.Glob(filepath.Join(h.Dir, "instances", "*", "gateway.pid"))
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rec struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(data, &rec) != nil || rec.PID <= 0 {
			continue
		}
		// Only a process of this run: its command line names the work dir.
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", rec.PID))
		if err != nil || !strings.Contains(string(cmdline), h.Dir) {
			continue
		}
		pids = append(pids, rec.PID)
	}
	return pids
}
