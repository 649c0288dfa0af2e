package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/gatehouse/gatehouse/deploy"
)

// block is the content pattern repeats; its length is prime so that the
// stream does not line up with any buffer size.
var block = func() []byte {
	b := make([]byte, 65521)
	for i := range b {
		b[i] = byte(i*2654435761>>13) ^ byte(i)
	}
	return b
}()

// pattern is an endless, cheap byte stream.
type pattern struct{ off int }

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], block[p.off:])
		n += c
		p.off = (p.off + c) % len(block)
	}
	return n, nil
}

func rssMiB(t *testing.T, pid int) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func simpleConfig(t *testing.T, path string, upstreamAddr string) {
	writeConfig(t, path, deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "up", Targets: []deploy.Target{{Address: upstreamAddr}}}},
		Services: []deploy.Service{{Name: "svc", Upstream: "up", Routes: []deploy.Route{
			{Name: "all", Paths: []string{"/*"}},
		}}},
	})
}

// A 1 GiB upload and a 1 GiB download pass through without the gateway
// holding them in memory.
func TestLargeBodiesStream(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const size = 1 << 30
		up := startUpstream(t, "sink", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == "GET" {
				w.Header().Set("Content-Length", strconv.Itoa(size))
				io.CopyN(w, &pattern{}, size)
				return
			}
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
		})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		simpleConfig(t, cfg, up.addr)
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)

		want := sha256.New()
		io.CopyN(want, &pattern{}, size)
		wantSum := hex.EncodeToString(want.Sum(nil))

		for _, chunked := range []bool{false, true} {
			var body io.Reader = io.LimitReader(&pattern{}, size)
			req, _ := http.NewRequest("POST", "http://"+gw.listen+"/upload", body)
			if chunked {
				req.ContentLength = -1 // Transfer-Encoding: chunked
			} else {
				req.ContentLength = size
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("upload (chunked=%v): %v", chunked, err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != fmt.Sprintf("%d %s", size, wantSum) {
				t.Fatalf("upload (chunked=%v): %d %q", chunked, resp.StatusCode, got)
			}
		}

		resp, err := http.Get("http://" + gw.listen + "/download")
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != wantSum {
			t.Fatalf("download: %d bytes, err %v", n, err)
		}

		// Peak resident memory stays far below the body size.
		if peak := rssMiB(t, gw.cmd.Process.Pid); peak > 200 {
			t.Errorf("gateway peak RSS %.0f MiB while streaming 1 GiB bodies: bodies are buffered", peak)
		} else {
			t.Logf("gateway peak RSS %.0f MiB", peak)
		}
	})
}

func TestWebSocketEcho(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		upgrader := websocket.Upgrader{}
		up := startUpstream(t, "ws", func(w http.ResponseWriter, r *http.Request) {
			c, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				kind, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				c.WriteMessage(kind, append([]byte("echo:"+r.URL.Path+":"), msg...))
			}
		})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		simpleConfig(t, cfg, up.addr)
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)

		c, resp, err := websocket.DefaultDialer.Dial("ws://"+gw.listen+"/chat", nil)
		if err != nil {
			t.Fatalf("dial through gateway: %v (response %v)", err, resp)
		}
		defer c.Close()
		for i := 0; i < 100; i++ {
			msg := fmt.Sprintf("message %d %s", i, strings.Repeat("x", i*100))
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "echo:/chat:"+msg {
				t.Fatalf("message %d: got %q", i, got[:min(len(got), 40)])
			}
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	})
}
