//go:build linux

package evloop

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// stateDispatcher answers locally and counts the per-connection states
// it had to create.
type stateDispatcher struct{ created atomic.Int64 }

type connCounter struct{ requests int }

func (d *stateDispatcher) Dispatch(req *Request, ex *Exchange) {
	st, _ := ex.User.(*connCounter)
	if st == nil {
		st = &connCounter{}
		ex.User = st
		d.created.Add(1)
	}
	st.requests++
	ex.Status = 200
	ex.ContentType = "text/plain"
	ex.Body = fmt.Appendf(ex.Body[:0], "%d", st.requests)
}

func (d *stateDispatcher) Failed(*Exchange, error, bool) bool { return false }
func (d *stateDispatcher) Done(*Exchange, Result)             {}

// The Dispatcher's User survives from one exchange to the next on a
// connection, so that it can keep per-connection scratch space.
func TestUserKeptAcrossExchanges(t *testing.T) {
	d := &stateDispatcher{}
	e := startEngine(t, d, nil)
	for conn := 1; conn <= 2; conn++ {
		c, br := dialRaw(t, e)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
			if _, body := readResponse(t, br, "GET"); body != fmt.Sprint(i) {
				t.Fatalf("connection %d request %d: the dispatcher saw request number %s", conn, i, body)
			}
		}
	}
	if n := d.created.Load(); n != 2 {
		t.Fatalf("%d per-connection states created for 2 connections", n)
	}
}
