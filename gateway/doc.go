// Package gateway is the data plane process (`gatehouse gateway`): it
// loads a configuration (its file, else the newest valid one in its local
// store), follows its source (the file, or the signed deployments of its
// node manager: remote.go), compiles and swaps it in atomically, serves
// traffic on its HTTP and HTTPS listeners, reports on its status port, and
// drains in-flight requests on shutdown.
//
// The request path itself lives in gateway/proxy, routing in
// gateway/router, load balancing and health in gateway/upstream, and the
// bbolt store in gateway/store.
package gateway
