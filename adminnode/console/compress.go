package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// What an open page transfers: the live part every second and the static
// files on every page. Both are answered with an ETag, and not at all
// (304) when the browser has them already, and gzipped for browsers that
// accept it. Pages themselves are never compressed: they carry the
// session's CSRF token beside text an attacker may choose (a label
// selector), which compression would let them guess byte by byte by the
// answer's length (BREACH). The live parts and the static files carry no
// token.

// etagOf is a strong validator of body.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// notModified answers 304 when the request's If-None-Match names etag.
func notModified(w http.ResponseWriter, r *http.Request, etag string) bool {
	w.Header().Set("ETag", etag)
	for _, t := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if strings.TrimSpace(t) == etag {
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, e := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(e), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func gzipped(body []byte) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	zw.Write(body)
	zw.Close()
	return b.Bytes()
}

// writeBody writes a 200 answer, gzipped (zipped, computed when nil) for
// a browser that accepts it.
func writeBody(w http.ResponseWriter, r *http.Request, contentType string, body, zipped []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		if zipped == nil {
			zipped = gzipped(body)
		}
		if len(zipped) < len(body) {
			h.Set("Content-Encoding", "gzip")
			body = zipped
		}
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// staticFile is one of the console's files, ready to serve.
type staticFile struct {
	contentType  string
	body, zipped []byte
	etag         string
}

// loadStatic reads the console's files once: they are in the binary and
// never change while it runs.
func loadStatic(fsys fs.FS) (map[string]staticFile, error) {
	files := map[string]staticFile{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			return fmt.Errorf("static file %s: no known content type", p)
		}
		files[p] = staticFile{contentType: ct, body: body, zipped: gzipped(body), etag: etagOf(body)}
		return nil
	})
	return files, err
}

// serveStatic serves the console's files. A browser may keep them, but
// asks again each time (no-cache): after an upgrade it gets the new ones.
func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := c.static[strings.TrimPrefix(r.URL.Path, Prefix+"static/")]
	if !ok {
		c.fail(w, r, nil, http.StatusNotFound, "No such page.")
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	if notModified(w, r, f.etag) {
		return
	}
	writeBody(w, r, f.contentType, f.body, f.zipped)
}
