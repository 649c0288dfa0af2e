package gateway

import (
	"time"

	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// Report is the JSON document of the status port's /status.
type Report struct {
	Instance string `json:"instance"`
	Group    string `json:"group"`
	// Version and FeatureLevel are the gateway binary's: what it runs and
	// the highest configuration feature level it applies.
	Version      string `json:"version"`
	FeatureLevel int    `json:"feature_level"`
	// Settings are the dynamic settings in force; absent when the gateway
	// runs as started.
	Settings  *localapi.Settings `json:"settings,omitempty"`
	Ready     bool               `json:"ready"`
	Draining  bool               `json:"draining"`
	StartedAt time.Time          `json:"started_at"`
	// Source is where configurations come from: "file <path>",
	// "node-manager <url>", "object-storage <bucket>, object <key>", or "none"
	// (the store only).
	Source        string            `json:"source"`
	Configuration *ConfigReport     `json:"configuration"`
	Deployment    *DeploymentReport `json:"deployment,omitempty"`
	Gossip        *GossipReport     `json:"gossip,omitempty"`
	LastError     *applyError       `json:"last_error"`
	Store         StoreReport       `json:"store"`
	Listeners     []listenerInfo    `json:"listeners"`
	Upstreams     []UpstreamReport  `json:"upstreams"`
}

// ConfigReport describes the configuration in use.
type ConfigReport struct {
	Checksum  string    `json:"checksum"`
	AppliedAt time.Time `json:"applied_at"`
	Origin    string    `json:"origin"`
	Services  int       `json:"services"`
	Routes    int       `json:"routes"`
}

// DeploymentReport is the state of a gateway that serves signed
// deployments: under a node manager or from object storage.
type DeploymentReport struct {
	// Applied is the number of the deployment served; 0 before the first.
	Applied     uint64             `json:"applied"`
	LastRefused *RefusedDeployment `json:"last_refused,omitempty"`
	// NodeManager is set under a node manager, ObjectStorage when the
	// source is a published deployment.
	NodeManager   NodeManagerReport    `json:"node_manager,omitzero"`
	ObjectStorage *ObjectStorageReport `json:"object_storage,omitempty"`
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
		Instance: g.opts.Instance,
		Group:    g.opts.Group,
		Version:  g.opts.Version, FeatureLevel: g.opts.FeatureLevel, Settings: g.settings(),
		Ready:     g.Ready(),
		Draining:  g.draining.Load(),
		StartedAt: g.started,
		LastError: g.lastErr.Load(),
		Store:     StoreReport{Path: g.storePath(), SetAside: g.aside},
	}
	switch {
	case g.remote != nil:
		r.Source = "node-manager " + g.remote.url
		refused, contact := g.remote.status()
		r.Deployment = &DeploymentReport{Applied: g.deployment.Load(), LastRefused: refused, NodeManager: contact}
		r.Gossip = g.gossipReport()
	case g.published != nil:
		r.Source = "object-storage " + g.published.name
		refused, contact := g.published.status()
		r.Deployment = &DeploymentReport{Applied: g.deployment.Load(), LastRefused: refused, ObjectStorage: &contact}
	case g.opts.ConfigPath != "":
		r.Source = "file " + g.opts.ConfigPath
	default:
		r.Source = "none"
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
