package sdk

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/policy/external/pluginpb"
)

// Serve serves checker to the gateway that started the program, until the
// gateway stops it or exits. Run by hand, the program says it is a plugin
// and exits.
func Serve(checker Checker) {
	go exitWithParent(os.Getppid())
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pluginpb.Handshake,
		Plugins: plugin.PluginSet{
			pluginpb.Name: &pluginpb.Plugin{Impl: &server{checker: checker}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     Logger(),
	})
}

// stderr is the process's standard error as the gateway started it.
// Serve points os.Stderr elsewhere: at a stream the gateway logs as plain
// text, whereas JSON lines on the original keep their level and fields.
var stderr = os.Stderr

// Logger returns a logger whose lines the gateway writes to its own log,
// at their level, naming the plugin.
func Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace,
		Output:     stderr,
		JSONFormat: true,
	})
}

// exitWithParent ends the plugin when the gateway is gone without having
// stopped it (killed, crashed): the plugin is then a child of another
// process, and nobody will ever call it again.
func exitWithParent(ppid int) {
	for range time.Tick(time.Second) {
		if os.Getppid() != ppid {
			os.Exit(0)
		}
	}
}

// server adapts a Checker to the gRPC service.
type server struct {
	pluginpb.UnimplementedPolicyServer
	checker Checker
}

func (s *server) Check(ctx context.Context, in *pluginpb.CheckRequest) (out *pluginpb.Verdict, err error) {
	// A panicking check must cost one request, not the plugin process
	// and every request in flight with it.
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, status.Errorf(codes.Internal, "check panicked: %v", p)
		}
	}()
	v, err := s.checker.Check(ctx, fromWire(in))
	if err != nil {
		return nil, err
	}
	return toWire(v), nil
}

func fromWire(in *pluginpb.CheckRequest) *Request {
	r := &Request{
		Method:        string(in.Method),
		Path:          string(in.Path),
		Query:         string(in.Query),
		Host:          string(in.Host),
		ClientIP:      in.ClientIp,
		TLS:           in.Tls,
		Consumer:      in.Consumer,
		Service:       in.Service,
		Route:         in.Route,
		RequestID:     string(in.RequestId),
		ContentLength: in.ContentLength,
		Body:          in.Body,
		BodyIncluded:  in.BodyIncluded,
		Config:        in.Config,
		Headers:       make([]Header, len(in.Headers)),
	}
	for i, h := range in.Headers {
		r.Headers[i] = Header{string(h.Name), string(h.Value)}
	}
	return r
}

func toWire(v *Verdict) *pluginpb.Verdict {
	if v == nil {
		return &pluginpb.Verdict{}
	}
	out := &pluginpb.Verdict{
		Action:               pluginpb.Action(v.Action),
		Status:               int32(v.Status),
		Message:              v.Message,
		SetRequestHeaders:    headers(v.SetRequestHeaders),
		SetResponseHeaders:   headers(v.SetResponseHeaders),
		RemoveRequestHeaders: make([][]byte, len(v.RemoveRequestHeaders)),
	}
	for i, name := range v.RemoveRequestHeaders {
		out.RemoveRequestHeaders[i] = []byte(name)
	}
	return out
}

func headers(hs []Header) []*pluginpb.Header {
	out := make([]*pluginpb.Header, len(hs))
	for i, h := range hs {
		out[i] = &pluginpb.Header{Name: []byte(h.Name), Value: []byte(h.Value)}
	}
	return out
}
