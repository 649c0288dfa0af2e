package httplog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/policy"
)

const (
	// closeDeadline bounds how long Close spends delivering what is
	// queued: a deployment's switch must not wait on a dead collector.
	closeDeadline = 2 * time.Second
	// retryDelay is the pause before a failed batch's one retry.
	retryDelay = 200 * time.Millisecond
)

// sender queues JSON lines and POSTs them in batches from its own
// goroutine. It outlives deployments that keep its configuration.
type sender struct {
	cfg      config
	client   *http.Client
	metrics  policy.Metrics
	logger   hclog.Logger
	redacted string // the endpoint without credentials, for logs

	// lines holds *[]byte buffers that Log encodes an entry in before
	// taking the lock.
	lines sync.Pool

	mu     sync.Mutex
	buf    []byte // lines not yet taken by the goroutine
	inBuf  int    // lines in buf
	queued int    // lines in buf and being sent: what buffer bounds
	closed bool

	dropped atomic.Uint64

	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

func newSender(cfg config, metrics policy.Metrics, logger hclog.Logger) *sender {
	redacted := cfg.endpoint
	if u, err := url.Parse(cfg.endpoint); err == nil {
		redacted = u.Redacted()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{
		cfg: cfg,
		client: &http.Client{
			Timeout:   cfg.timeout,
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect followed with a GET would count the batch as
			// delivered; a 3xx fails it instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		metrics:  metrics,
		logger:   logger,
		redacted: redacted,
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
	s.lines.New = func() any { b := make([]byte, 0, 512); return &b }
	return s
}

// enqueue queues one line (ending in '\n') without waiting: a full queue
// drops it.
func (s *sender) enqueue(line []byte) {
	s.mu.Lock()
	if s.closed || s.queued >= s.cfg.buffer {
		s.mu.Unlock()
		s.drop(1)
		return
	}
	s.buf = append(s.buf, line...)
	s.inBuf++
	s.queued++
	full := s.inBuf >= s.cfg.batchSize
	s.mu.Unlock()
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *sender) drop(n int) {
	s.dropped.Add(uint64(n))
	if s.metrics != nil {
		s.metrics.LogDropped("http-log", n)
	}
}

func (s *sender) start() { go s.run() }

func (s *sender) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.flushInterval)
	defer tick.Stop()
	var spare []byte
	for {
		select {
		case <-s.stop:
			s.flush(spare)
			return
		case <-tick.C:
		case <-s.kick:
		}
		spare = s.flush(spare)
	}
}

// flush takes every queued line, giving spare to the queue in exchange,
// and sends them batch by batch. It returns the taken buffer for reuse.
func (s *sender) flush(spare []byte) []byte {
	s.mu.Lock()
	taken := s.buf
	s.buf, s.inBuf = spare[:0], 0
	s.mu.Unlock()
	for rest := taken; len(rest) > 0; {
		batch, n := cutLines(rest, s.cfg.batchSize)
		rest = rest[len(batch):]
		s.send(batch, n)
		s.mu.Lock()
		s.queued -= n
		s.mu.Unlock()
	}
	return taken[:0]
}

// cutLines returns the first n lines of b (fewer when b has fewer) and
// how many it holds.
func cutLines(b []byte, n int) ([]byte, int) {
	end, count := 0, 0
	for count < n && end < len(b) {
		i := bytes.IndexByte(b[end:], '\n')
		if i < 0 {
			return b, count + 1
		}
		end += i + 1
		count++
	}
	return b[:end], count
}

// send POSTs a batch, retrying once; a batch that fails twice is dropped.
func (s *sender) send(batch []byte, n int) {
	err := s.post(batch)
	if err != nil {
		select {
		case <-time.After(retryDelay):
		case <-s.ctx.Done():
		}
		err = s.post(batch)
	}
	if err != nil {
		s.drop(n)
		s.logger.Warn("http-log batch dropped", "endpoint", s.redacted, "entries", n, "error", err)
	}
}

func (s *sender) post(batch []byte) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.cfg.endpoint, bytes.NewReader(batch))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for name, value := range s.cfg.headers {
		req.Header.Set(name, value)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	// Reading the body lets the connection be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("collector answered %s", resp.Status)
	}
	return nil
}

// Close stops taking lines, delivers those queued within closeDeadline,
// dropping the rest, and stops the goroutine.
func (s *sender) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		t := time.NewTimer(closeDeadline)
		select {
		case <-s.done:
		case <-t.C:
			s.cancel()
			<-s.done
		}
		t.Stop()
		s.cancel()
		s.client.CloseIdleConnections()
	})
	return nil
}
