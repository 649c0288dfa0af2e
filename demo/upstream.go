package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
)

// Echo is what the demo upstream answers.
type Echo struct {
	Upstream string            `json:"upstream"`
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Query    string            `json:"query,omitempty"`
	Host     string            `json:"host"`
	Headers  map[string]string `json:"headers"`
	BodySize int64             `json:"body_size"`
}

// Handler answers every request with an Echo naming itself name.
func Handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		e := Echo{
			Upstream: name,
			Method:   r.Method,
			Path:     r.URL.Path,
			Query:    r.URL.RawQuery,
			Host:     r.Host,
			Headers:  map[string]string{},
			BodySize: n,
		}
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e.Headers[k] = strings.Join(r.Header[k], ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(e)
	})
}
