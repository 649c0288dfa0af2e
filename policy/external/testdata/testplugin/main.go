// Command testplugin is an external policy plugin for the tests of
// policy/external: the request's X-Test-* headers say how it behaves.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/policy/external/sdk"
)

func main() {
	sdk.Serve(sdk.CheckerFunc(check))
}

func check(_ context.Context, r *sdk.Request) (*sdk.Verdict, error) {
	if d, err := time.ParseDuration(r.Header("X-Test-Delay")); err == nil {
		// Deaf to the deadline, like a plugin that hangs.
		time.Sleep(d)
	}
	switch r.Header("X-Test-Action") {
	case "reject":
		status, _ := strconv.Atoi(r.Header("X-Test-Status"))
		return sdk.Reject(status, r.Header("X-Test-Message")).SetResponseHeader("WWW-Authenticate", "Test"), nil
	case "modify":
		return sdk.Continue().
			SetRequestHeader("X-Added", "yes").
			RemoveRequestHeader("X-Remove-Me").
			SetResponseHeader("X-Seen-By", "testplugin"), nil
	case "echo":
		js, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		return sdk.Continue().SetResponseHeader("X-Test-Echo", string(js)), nil
	case "bad-name":
		return sdk.Continue().SetRequestHeader("Bad Name", "x"), nil
	case "bad-value":
		return sdk.Continue().SetResponseHeader("X-Split", "a\r\nSet-Cookie: b"), nil
	case "owned":
		return sdk.Continue().SetRequestHeader("Content-Length", "0"), nil
	case "log":
		fmt.Fprintln(os.Stderr, "printed on stderr")
		sdk.Logger().Warn("logged with the sdk", "n", 7)
		return sdk.Continue(), nil
	case "error":
		return nil, errors.New("test failure")
	case "panic":
		panic("test panic")
	case "exit":
		os.Exit(3)
	}
	return sdk.Continue(), nil
}
