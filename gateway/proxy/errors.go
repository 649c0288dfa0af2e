package proxy

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// writeError answers with the gateway's JSON error body, the same shape
// for every error so that clients can parse it without knowing which part
// of the path failed:
//
//	{"error":{"status":502,"code":"upstream_failed","message":"…","request_id":"…"}}
func writeError(ctx *fasthttp.RequestCtx, status int, code, message string) {
	resp := &ctx.Response
	resp.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	id := ctx.Request.Header.PeekBytes(headerXRequestID)
	if len(id) > 0 {
		resp.Header.SetBytesKV(headerXRequestID, id)
	}
	resp.SetBodyRaw(appendErrorBody(make([]byte, 0, 160), status, code, message, id))
}

func appendErrorBody(b []byte, status int, code, message string, id []byte) []byte {
	b = append(b, `{"error":{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, message)
	if len(id) > 0 {
		b = append(b, `,"request_id":`...)
		b = strconv.AppendQuote(b, string(id))
	}
	return append(b, "}}\n"...)
}
