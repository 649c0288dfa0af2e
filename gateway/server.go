package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/gateway/evloop"
)

// newServer is the traffic server shared by the HTTP and HTTPS listeners.
func newServer(g *Gateway) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: g.proxy.ServeHTTP,
		// Expect: 100-continue is decided by routing and policies before
		// the body is read, as on the event loops.
		ExpectHandler: g.proxy.Expect,
		// Bodies stream through instead of being buffered: a large upload
		// costs the gateway buffers, not its size in memory.
		StreamRequestBody:     true,
		MaxRequestBodySize:    1 << 20,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         true,
		ReadBufferSize:        16 << 10,
		IdleTimeout:           75 * time.Second,
		CloseOnShutdown:       true,
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			switch s {
			case fasthttp.StateNew:
				g.metrics.ConnOpened()
			case fasthttp.StateClosed, fasthttp.StateHijacked:
				g.metrics.ConnClosed()
			}
		},
		Logger: fasthttpLogger{g.logger.Named("http")},
	}
}

func newStatusServer(g *Gateway) *http.Server {
	return &http.Server{
		Handler:           g.statusHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          g.logger.Named("status").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
}

// shutdown marks the gateway unready (so that load balancers in front stop
// sending), stops accepting, and waits for in-flight requests up to the
// drain timeout; under a node manager it then gives it its last traffic
// counts.
func (g *Gateway) shutdown(engine *evloop.Engine, srv *fasthttp.Server, statusSrv *http.Server) {
	g.draining.Store(true)
	g.logger.Info("draining", "timeout", g.opts.DrainTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if engine != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := engine.Shutdown(ctx); err != nil {
				g.logger.Warn("drain timeout reached; closing remaining connections", "engine", "evloop", "error", err)
			}
		}()
	}
	if err := srv.ShutdownWithContext(ctx); err != nil {
		g.logger.Warn("drain timeout reached; closing remaining connections", "error", err)
	}
	wg.Wait()
	statusCtx, cancelStatus := context.WithTimeout(context.Background(), time.Second)
	defer cancelStatus()
	statusSrv.Shutdown(statusCtx)
	if g.remote != nil {
		g.pushTraffic()
	}
	g.registry.Close()
	g.policies.closeAll()
	if err := g.store.Close(); err != nil {
		g.logger.Error("close store", "error", err)
	}
	g.logger.Info("stopped")
}

// fasthttpLogger sends fasthttp's messages (mostly broken client
// connections) to hclog at debug level.
type fasthttpLogger struct{ l hclog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...))
}
