// Package console serves the domain's web console at /ui/: server-rendered
// pages (html/template) with one small hand-written script that refreshes
// their live part, every asset embedded in the binary.
//
// The console holds no domain logic of its own. Each page is made of calls
// to the admin API's handler, in process, with the signed-in user's login
// token: the API's password check, login rate limiter, RBAC filters and
// refusals, and audit log apply to the console exactly as to the CLI. A
// console session is an API login token kept in an HttpOnly cookie; the
// store holds its hash like any other token's, so a session holds on every
// admin node of a domain that shares one PostgreSQL. The console reads the
// token's record (last use) for idle expiry, and the user's authorizer to
// offer only the actions the user may take. Files sent through it (a
// gateway release, a promotion package) go to the API as they arrive: a
// release is streamed from the browser's form to the API's handler.
package console
