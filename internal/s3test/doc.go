// Package s3test runs a real S3-protocol server in the test's process, on
// 127.0.0.1:0, for the tests of objstore and the end-to-end tests: the
// requests are the real client's, over real HTTP, and every one must carry
// an AWS Signature V4 made with the server's credentials. The server
// answers path-style requests on its loopback address and virtual-host
// style requests on any other host name, and can fail the next requests
// with a server error to exercise retries. It is for tests only.
package s3test
