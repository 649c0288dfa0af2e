package pluginpb

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is what the gateway and a plugin must agree on before
// talking. The magic cookie only keeps a plugin binary from being run by
// hand by mistake; it is no security measure. ProtocolVersion changes
// when policy.proto changes incompatibly.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "GATEHOUSE_POLICY_PLUGIN",
	MagicCookieValue: "4f1d7c2e9b3a4e58a6d0c1b7e2f93a65",
}

// Name is the name the plugin is served and dispensed under.
const Name = "policy"

// Plugin serves Impl in a plugin process, and gives the gateway a
// PolicyClient.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl PolicyServer
}

// GRPCServer registers the policy service.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	RegisterPolicyServer(s, p.Impl)
	return nil
}

// GRPCClient returns a PolicyClient on the plugin's connection.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewPolicyClient(c), nil
}
