//go:build linux

package evloop

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

func TestWebSocket(t *testing.T) {
	up := websocket.Upgrader{}
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, b); err != nil {
				return
			}
		}
	}))
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+e.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	big := strings.Repeat("x", 1<<20)
	for _, msg := range []string{"hello", "world", big} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != msg {
			t.Fatalf("echo of %d bytes: got %d", len(msg), len(b))
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.ReadMessage()
	c.Close()
	r := d.waitDone(t)
	if r.Status != 101 || !r.Upgraded || r.BytesIn == 0 || r.BytesOut == 0 {
		t.Fatalf("result %+v", r)
	}
}
