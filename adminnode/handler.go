package adminnode

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/console"
)

// rootHandler serves the console under /ui/ (and sends a browser at / there)
// and the API everywhere else, as it always answered: paths reach it
// untouched, unknown ones get its JSON 404.
func rootHandler(apiHandler, ui http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, console.Prefix, http.StatusFound)
		case p == strings.TrimSuffix(console.Prefix, "/") || strings.HasPrefix(p, console.Prefix):
			ui.ServeHTTP(w, r)
		default:
			apiHandler.ServeHTTP(w, r)
		}
	})
}
