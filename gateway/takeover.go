package gateway

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/gateway/handover"
	"github.com/gatehouse/gatehouse/gateway/store"
)

// Zero-downtime restarts (docs/node-manager.md, "Restarts without
// downtime"): a gateway with a data directory offers its listening sockets
// to the process that replaces it (package handover), and a gateway
// started with Options.Takeover serves on the sockets it took.

// listenTCP binds addr for the listener name, or takes the socket the
// replaced process bound for the same address.
func (g *Gateway) listenTCP(name, addr string) (net.Listener, error) {
	if files := g.opts.Takeover.Files(name, addr); len(files) > 0 {
		l, err := net.FileListener(files[0])
		if err != nil {
			return nil, fmt.Errorf("taken-over %s socket: %w", name, err)
		}
		return l, nil
	}
	return net.Listen("tcp", addr)
}

// handoverListeners duplicates the listening sockets for the process that
// takes over.
func (g *Gateway) handoverListeners(l *listeners) ([]handover.Listener, error) {
	var out []handover.Listener
	fail := func(err error) ([]handover.Listener, error) {
		for _, h := range out {
			for _, f := range h.Files {
				f.Close()
			}
		}
		return nil, err
	}
	add := func(name, addr string, ln net.Listener) error {
		if ln == nil {
			return nil
		}
		tl, ok := ln.(*net.TCPListener)
		if !ok {
			return fmt.Errorf("%s listener is a %T", name, ln)
		}
		f, err := tl.File()
		if err != nil {
			return fmt.Errorf("%s socket: %w", name, err)
		}
		out = append(out, handover.Listener{Name: name, Addr: addr, Files: []*os.File{f}})
		return nil
	}
	if err := add("status_listen", g.opts.StatusListen, l.status); err != nil {
		return fail(err)
	}
	if err := add("tls_listen", g.opts.TLSListen, l.httpsRaw); err != nil {
		return fail(err)
	}
	if err := add("pprof_listen", g.opts.ProfilingListen, l.pprof); err != nil {
		return fail(err)
	}
	if l.engine != nil {
		files, err := l.engine.Files()
		if err != nil {
			return fail(err)
		}
		out = append(out, handover.Listener{Name: "listen", Addr: g.opts.Listen, Files: files})
	} else if err := add("listen", g.opts.Listen, l.http); err != nil {
		return fail(err)
	}
	return out, nil
}

// offerHandover offers the sockets under the data directory's name until
// a new process is ready (then it returns the offer's Ready channel
// closed) or ctx ends. A gateway without a data directory offers nothing.
func (g *Gateway) offerHandover(ctx context.Context, l *listeners, ready chan<- struct{}) {
	if g.opts.DataDir == "" {
		return
	}
	if t := g.opts.Takeover; t != nil {
		// The replaced process holds the name until it exits.
		select {
		case <-t.Gone():
		case <-ctx.Done():
			return
		}
	}
	o, err := handover.Listen(handover.Name(g.opts.DataDir), g.logger.Named("handover"))
	if err != nil {
		g.logger.Warn("cannot offer the listening sockets: a restart of this gateway will not be without downtime", "error", err)
		return
	}
	go func() {
		<-ctx.Done()
		o.Close()
	}()
	o.Serve(handover.Hooks{
		Prepare: func() ([]handover.Listener, error) {
			ls, err := g.handoverListeners(l)
			if err != nil {
				return nil, err
			}
			g.releaseStore()
			return ls, nil
		},
		Abort: g.reopenStore,
	})
	select {
	case <-o.Ready():
		close(ready)
	default:
	}
}

// releaseStore closes the store so that the process taking over can open
// it; configurations applied meanwhile are kept in memory.
func (g *Gateway) releaseStore() {
	if g.opts.DataDir == "" {
		return
	}
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	if _, ok := g.store.(*store.Memory); ok {
		return
	}
	if err := g.store.Close(); err != nil {
		g.logger.Error("close store for the process taking over", "error", err)
	}
	g.store = &store.Memory{}
}

// reopenStore takes the store back after a takeover that did not happen,
// with the configurations applied meanwhile.
func (g *Gateway) reopenStore() {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	mem, ok := g.store.(*store.Memory)
	if !ok {
		return
	}
	path := filepath.Join(g.opts.DataDir, "gateway.db")
	var (
		s   *store.Bolt
		err error
	)
	// The process that went away may hold the file for a moment longer.
	for range 5 {
		if s, err = store.Open(path); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		g.logger.Error("cannot reopen the store after a takeover that did not happen; configurations are kept in memory", "error", err)
		return
	}
	recs, _ := mem.List()
	for i := len(recs) - 1; i >= 0; i-- {
		if _, err := s.Save(recs[i]); err != nil {
			g.logger.Error("save configuration", "checksum", recs[i].Checksum, "error", err)
		}
	}
	g.store = s
	g.logger.Info("store reopened: the process that took the sockets went away before it was ready")
}

// waitReady waits until the gateway has a configuration to serve.
func (g *Gateway) waitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !g.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
