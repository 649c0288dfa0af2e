// Package objstore is where Gatehouse keeps objects outside its own stores:
// backups of a domain and the signed deployments published for gateways
// that must start while every admin node is down. A Bucket is named by a
// URL: file:///path for a directory, s3://bucket/prefix for an S3-protocol
// service. Every process may import it: it holds no process logic, only
// the transport of opaque objects under keys.
package objstore
