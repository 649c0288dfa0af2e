// Package pluginpb is the wire protocol between the gateway and external
// policy plugins: the gRPC service a plugin serves (generated from
// policy.proto; the generated files are committed so that building needs
// no protoc) and the go-plugin handshake and plugin definition both sides
// share. Plugin authors use policy/external/sdk rather than this package.
package pluginpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative policy.proto
