package nodemanager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// totalsTimeout bounds the reading of the gateways' totals for a
// heartbeat: on the same host they answer in milliseconds.
const totalsTimeout = 500 * time.Millisecond

// trafficTotals reads every running gateway's request and 5xx totals from
// its status port, in parallel, for the heartbeat: a rolling upgrade
// compares the error rate of new processes with the old ones' over its
// soak (docs/upgrades.md). A gateway that does not answer in time is left
// out.
func (a *agent) trafficTotals() map[string]*apitypes.InstanceTraffic {
	ctx, cancel := context.WithTimeout(context.Background(), totalsTimeout)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]*apitypes.InstanceTraffic{}
	)
	for _, t := range a.trafficTargets() {
		if t.url == "" {
			continue
		}
		wg.Go(func() {
			snap, err := readSnapshot(ctx, http.DefaultClient, t.url)
			if err != nil || snap.Instance != t.name {
				return
			}
			tr := &apitypes.InstanceTraffic{Boot: snap.Boot}
			for _, s := range snap.Series {
				tr.Requests += s.Requests
				if s.Class == traffic.Class5xx {
					tr.Errors += s.Requests
				}
			}
			mu.Lock()
			out[t.name] = tr
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// readSnapshot reads a gateway's traffic snapshot from its status port.
func readSnapshot(ctx context.Context, client *http.Client, url string) (*traffic.Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var snap traffic.Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxSnapshotBytes)).Decode(&snap); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return &snap, nil
}
