//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestMixedLoad runs many clients with a mix of methods, body framings,
// sizes and pipelining against an echo target, checking every byte.
func TestMixedLoad(t *testing.T) {
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if n, _ := strconv.Atoi(r.URL.Path[2:]); n%7 == 0 {
			// Upstream connections end now and then, as in real life.
			w.Header().Set("Connection", "close")
		}
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)+len(r.URL.Path)))
		}
		io.WriteString(w, r.URL.Path)
		w.Write(b)
	}))
	d := newDispatcher(addr)
	d.quiet = true
	e := startEngine(t, d, nil)
	clients, perClient := 16, 150
	if testing.Short() {
		clients, perClient = 4, 50
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			if err := mixedClient(e.Addr().String(), rand.New(rand.NewPCG(seed, 1)), perClient); err != nil {
				errs <- err
			}
		}(uint64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func mixedClient(addr string, rng *rand.Rand, n int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	for i := 0; i < n; {
		// Up to three requests per write, pipelined.
		batch := 1 + rng.IntN(3)
		var wire bytes.Buffer
		var want []string
		for j := 0; j < batch && i < n; j, i = j+1, i+1 {
			path := fmt.Sprintf("/r%d", i)
			size := 0
			switch rng.IntN(4) {
			case 1:
				size = rng.IntN(2000)
			case 2:
				size = rng.IntN(200000)
			}
			body := bytes.Repeat([]byte{byte('a' + i%26)}, size)
			q := ""
			if rng.IntN(2) == 0 {
				q = "?chunked=1"
			}
			switch {
			case size == 0:
				fmt.Fprintf(&wire, "GET %s%s HTTP/1.1\r\nHost: x\r\n\r\n", path, q)
			case rng.IntN(2) == 0:
				fmt.Fprintf(&wire, "POST %s%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, q, size)
				wire.Write(body)
			default:
				fmt.Fprintf(&wire, "POST %s%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", path, q)
				for rest := body; len(rest) > 0; {
					k := min(len(rest), 1+rng.IntN(30000))
					fmt.Fprintf(&wire, "%x\r\n%s\r\n", k, rest[:k])
					rest = rest[k:]
				}
				wire.WriteString("0\r\n\r\n")
			}
			want = append(want, path+string(body))
		}
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(wire.Bytes())
			werr <- err
		}()
		for _, w := range want {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if string(b) != w {
				return fmt.Errorf("response %d bytes, want %d (%.20q)", len(b), len(w), w)
			}
		}
		if err := <-werr; err != nil {
			return err
		}
	}
	return nil
}
