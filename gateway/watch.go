package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

// readFile reads and decodes the declarative file, returning the sha256 of
// its bytes so that an unchanged file is not applied again.
func (g *Gateway) readFile() (*deploy.Config, string, error) {
	data, err := os.ReadFile(g.opts.ConfigPath)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	cfg, err := deploy.Decode(data)
	if err != nil {
		return nil, hex.EncodeToString(sum[:]), fmt.Errorf("decode %s:\n%w", g.opts.ConfigPath, err)
	}
	return cfg, hex.EncodeToString(sum[:]), nil
}

// watchFile reloads the file when its content changes (checked every
// WatchInterval, which also catches editors that replace the file rather
// than write it) and at once on every signal from reload (SIGHUP).
func (g *Gateway) watchFile(ctx context.Context, reload <-chan struct{}) {
	t := time.NewTicker(g.opts.WatchInterval)
	defer t.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-reload:
			forced = true
		}
		g.reloadFile(forced)
	}
}

func (g *Gateway) reloadFile(forced bool) {
	g.fileMu.Lock()
	defer g.fileMu.Unlock()
	cfg, sum, err := g.readFile()
	if err != nil && sum == "" {
		if forced {
			g.logger.Error("reload: cannot read configuration file; keeping the current configuration", "path", g.opts.ConfigPath, "error", err)
		}
		return
	}
	if sum == g.fileSum && !forced {
		return
	}
	g.fileSum = sum
	if err != nil {
		g.lastErr.Store(&applyError{Message: err.Error(), Origin: "file:" + g.opts.ConfigPath, At: time.Now()})
		g.metrics.Reload(false, time.Now())
		g.logger.Error("configuration file rejected; keeping the current configuration", "path", g.opts.ConfigPath, "error", err)
		return
	}
	g.Apply(cfg, "file:"+g.opts.ConfigPath, true)
}
