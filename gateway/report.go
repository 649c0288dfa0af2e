package gateway

import (
	"time"

	"github.com/gatehouse/gatehouse/gateway/upstream"
)

// Report is the JSON document of the status port's /status.
type Report struct {
	Instance      string           `json:"instance"`
	Group         string           `json:"group"`
	Ready         bool             `json:"ready"`
	Draining      bool             `json:"draining"`
	StartedAt     time.Time        `json:"started_at"`
	Configuration *ConfigReport    `json:"configuration"`
	LastError     *applyError      `json:"last_error"`
	Store         StoreReport      `json:"store"`
	Listeners     []listenerInfo   `json:"listeners"`
	Upstreams     []UpstreamReport `json:"upstreams"`
}

// ConfigReport describes the configuration in use.
type ConfigReport struct {
	Checksum  string    `json:"checksum"`
	AppliedAt time.Time `json:"applied_at"`
	Origin    string    `json:"origin"`
	Services  int       `json:"services"`
	Routes    int       `json:"routes"`
}

// StoreReport says where applied configurations are kept and whether a
// damaged store was set aside at start.
type StoreReport struct {
	Path     string `json:"path"`
	SetAside string `json:"set_aside,omitempty"`
}

// UpstreamReport is the health of one upstream's targets.
type UpstreamReport struct {
	Name    string                 `json:"name"`
	Targets []upstream.TargetState `json:"targets"`
}

// Status implements status.Reporter.
func (g *Gateway) Status() any {
	r := Report{
		Instance:  g.opts.Instance,
		Group:     g.opts.Group,
		Ready:     g.Ready(),
		Draining:  g.draining.Load(),
		StartedAt: g.started,
		LastError: g.lastErr.Load(),
		Store:     StoreReport{Path: g.storePath(), SetAside: g.aside},
	}
	g.listenersMu.Lock()
	r.Listeners = append(r.Listeners, g.listeners...)
	g.listenersMu.Unlock()
	if snap := g.proxy.Current(); snap != nil {
		cr := &ConfigReport{Checksum: snap.Checksum, AppliedAt: snap.AppliedAt, Origin: snap.Origin, Services: len(snap.Config.Services)}
		for _, s := range snap.Config.Services {
			cr.Routes += len(s.Routes)
		}
		r.Configuration = cr
		for _, u := range snap.Config.Upstreams {
			if up := snap.Upstreams[u.Name]; up != nil {
				r.Upstreams = append(r.Upstreams, UpstreamReport{Name: u.Name, Targets: up.States()})
			}
		}
	}
	return r
}

func (g *Gateway) storePath() string {
	if g.opts.DataDir == "" {
		return "(memory)"
	}
	return g.opts.DataDir + "/gateway.db"
}
