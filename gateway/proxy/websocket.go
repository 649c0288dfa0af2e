package proxy

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/gateway/upstream"
)

// isWebSocket reports whether the client asks to upgrade to WebSocket.
func isWebSocket(h *fasthttp.RequestHeader) bool {
	return h.ConnectionUpgrade() && bytes.EqualFold(h.Peek("Upgrade"), []byte("websocket"))
}

// upgrade passes a WebSocket handshake to a target and, from then on,
// copies bytes both ways until either side closes. The upstream's own
// answer (101 or a refusal) goes to the client as it is.
func (p *Proxy) upgrade(ctx *fasthttp.RequestCtx, rt *route, up *upstream.Upstream, consumer string, start time.Time) {
	var keyBuf [64]byte
	t := up.Pick(hashKey(keyBuf[:0], ctx, rt, up), nil)
	if t == nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "no_healthy_target", "no healthy target in upstream "+up.Name)
		rt.metrics.Observe(consumer, fasthttp.StatusServiceUnavailable, time.Since(start), 0, -1, -1)
		return
	}
	t.Acquire()
	backend, err := net.DialTimeout("tcp", t.Address, up.Config.Timeouts.Connect.Or(5*time.Second))
	if err != nil {
		t.Release(false, 0)
		writeError(ctx, fasthttp.StatusBadGateway, "upstream_failed", "the upstream could not be reached")
		rt.metrics.Observe(consumer, fasthttp.StatusBadGateway, time.Since(start), 0, -1, -1)
		return
	}
	req := &ctx.Request
	req.Header.SetRequestURIBytes(req.URI().RequestURI())
	if _, err := backend.Write(req.Header.Header()); err != nil {
		backend.Close()
		t.Release(false, 0)
		writeError(ctx, fasthttp.StatusBadGateway, "upstream_failed", "the upstream could not be reached")
		rt.metrics.Observe(consumer, fasthttp.StatusBadGateway, time.Since(start), 0, -1, -1)
		return
	}
	rt.metrics.Observe(consumer, fasthttp.StatusSwitchingProtocols, time.Since(start), 0, -1, -1)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		defer t.Release(true, fasthttp.StatusSwitchingProtocols)
		pipe(client, backend)
	})
}

// pipe copies both ways; when one direction ends it half-closes the other
// side so that a close handshake can complete, then waits for both.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
