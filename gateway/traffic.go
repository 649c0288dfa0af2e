package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// newBoot makes the id of a gateway process.
func newBoot() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Traffic implements status.Reporter: what the gateway has served since it
// started, by route, consumer and status class.
func (g *Gateway) Traffic() traffic.Snapshot {
	return g.metrics.Traffic(g.opts.Group, g.opts.Instance, g.boot)
}

// pushTimeout bounds the last push of a stopping gateway: the node
// manager answers at once, and kills a gateway that drains for longer
// than it allows.
const pushTimeout = 2 * time.Second

// pushTraffic gives the node manager the gateway's final counts. Called
// once in-flight requests are done and the status port is closed, so that
// nothing is counted after it: the node manager reads /traffic only every
// interval, and what was served since its last reading would otherwise go
// with the process.
func (g *Gateway) pushTraffic() {
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	snap := g.Traffic()
	if err := g.remote.client.PushTraffic(ctx, snap); err != nil {
		g.logger.Warn("could not give the node manager the last traffic counts; requests since its last reading are not counted", "error", err)
		return
	}
	g.logger.Debug("last traffic counts given to the node manager", "series", len(snap.Series))
}
