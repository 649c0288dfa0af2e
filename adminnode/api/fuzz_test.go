package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// FuzzDraftPut sends arbitrary documents to PUT /groups/{group}/draft and
// POST .../validate: the answer is never a server error; a refused
// document changes nothing; an accepted one reads back as what was sent;
// validation answers in the documented shape.
func FuzzDraftPut(f *testing.F) {
	for _, seed := range []string{
		config("/a"),
		`{"services":[{"name":"s","upstream":"u","routes":[{"name":"r","paths":["/x/{id}"]}]}],"upstreams":[{"name":"u","targets":[{"address":"127.0.0.1:1"}]}]}`,
		"consumers:\n  - name: c\n    credentials: [{type: key, key: \"(redacted)\"}]\n",
		"certificates: [{name: c, snis: [a.example.com], cert: x, key: y}]",
		"{}", "", "null", "[", "services: [{name: s, upstream: u, routes: [{paths: [nope]}]}]",
		"global_policies: [{name: cors, config: {origins: ['*']}}]",
	} {
		f.Add([]byte(seed))
	}
	e := newEnv(f)
	e.group("edge", nil)
	h := e.srv.Handler()
	send := func(method, path string, body []byte, headers ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/api/v1"+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		before := must[store.Draft](t)(e.store.GetDraft(bg, "edge"))
		etag := `"` + strconv.FormatUint(before.Version, 10) + `"`
		rec := send("PUT", "/groups/edge/draft", doc, "If-Match", etag)
		switch {
		case rec.Code >= 500:
			t.Fatalf("server error %d for %q: %s", rec.Code, doc, rec.Body)
		case rec.Code != http.StatusOK:
			var eb apitypes.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("error without a JSON body for %q: %d %s", doc, rec.Code, rec.Body)
			}
			after := must[store.Draft](t)(e.store.GetDraft(bg, "edge"))
			if after.Version != before.Version {
				t.Fatalf("refused document %q changed the draft", doc)
			}
		default:
			sent, err := deploy.Decode(doc)
			if err != nil {
				t.Fatalf("accepted %q that does not decode: %v", doc, err)
			}
			if keepSecrets(sent, &before.Config) != nil {
				t.Fatalf("accepted %q whose placeholders have nothing to keep", doc)
			}
			after := must[store.Draft](t)(e.store.GetDraft(bg, "edge"))
			a := must[[]byte](t)(sent.Canonical())
			b := must[[]byte](t)(after.Config.Canonical())
			if !bytes.Equal(a, b) {
				t.Fatalf("stored draft differs from %q:\n%s\n%s", doc, a, b)
			}
		}
		rec = send("POST", "/groups/edge/draft/validate", doc)
		if rec.Code >= 500 {
			t.Fatalf("validate: server error %d for %q: %s", rec.Code, doc, rec.Body)
		}
		if rec.Code == http.StatusOK {
			var v apitypes.Validation
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.Valid == (len(v.Errors) > 0) || v.Valid && v.Checksum == "" {
				t.Fatalf("validation answer for %q: %s", doc, rec.Body)
			}
		}
	})
}
