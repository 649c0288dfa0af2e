// Command policy-plugin is an external policy for Gatehouse that checks
// an HMAC-SHA256 signature of each request, made with a secret the
// client and the policy's configuration share. Build it into the
// gateway's plugin directory:
//
//	go build -o /var/lib/gatehouse/plugins/signature ./examples/policy-plugin
//
// and use it on a route:
//
//	policies:
//	  - name: external
//	    config:
//	      plugin: signature
//	      config: {secret: "s3cr3t-shared-with-clients"}
//
// docs/policies/external.md explains how it is built, deployed and run.
package main

import "github.com/gatehouse/gatehouse/policy/external/sdk"

func main() {
	sdk.Serve(sdk.Configured(check))
}
