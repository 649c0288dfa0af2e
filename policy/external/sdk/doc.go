// Package sdk is what an external policy plugin is written with: a plugin
// is a program whose main calls Serve with a Checker, and the gateway
// starts it from its plugin directory and asks it about every request of
// the routes the policy applies to.
//
//	func main() {
//		sdk.Serve(sdk.Configured(func(ctx context.Context, r *sdk.Request, cfg *Config) (*sdk.Verdict, error) {
//			if r.Header("X-Team") != cfg.Team {
//				return sdk.Reject(403, "wrong team"), nil
//			}
//			return sdk.Continue(), nil
//		}))
//	}
//
// Check is called concurrently, once per request, within the policy's
// timeout (ctx carries the deadline). A Check that returns an error, or
// panics, or does not answer in time, leaves the decision to the policy's
// failure_mode. docs/policies/external.md describes the protocol.
package sdk
