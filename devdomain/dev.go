package devdomain

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode"
	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/demo"
	"github.com/gatehouse/gatehouse/nodemanager"
	"github.com/gatehouse/gatehouse/nodemanager/supervisor"
)

//go:embed sample.yaml
var sample []byte

// Options configure a development domain. Zero values take the defaults
// of the README's quickstart. Every address may have port 0: the port is
// then chosen when the domain is made, and printed (and passed to
// Listening).
type Options struct {
	// Dir holds everything; a fresh temporary directory, removed at the
	// end, when empty. A Dir that already holds a domain is reused as it
	// is (its password was printed when it was made), its instances on the
	// addresses they were declared with.
	Dir       string
	AdminAddr string // 127.0.0.1:8090
	NodeAddr  string // 127.0.0.1:8091
	Upstream  string // 127.0.0.1:9001
	// Gateways are the instances of the demo group. The node manager
	// starts them with the addresses declared in the admin node, so a
	// port 0 is chosen by Run, which holds it (bound, never listened on:
	// see reservePort) while it runs so that nothing else takes it.
	Gateways   []Gateway
	Logger     hclog.Logger
	Out        io.Writer
	GatewayBin string // this executable when empty
	// CLIDir, when set, is put first on PATH by dev.env: the directory of
	// the gatehouse that runs the domain, so that `source dev.env` is all
	// a shell needs to run the CLI against it.
	CLIDir string
	// Listening, when set, is called once the whole domain runs, with the
	// bound addresses: "admin_listen", "admin_url", "node_listen",
	// "upstream_listen", and "<instance>_listen",
	// "<instance>_status_listen" and "<instance>_gossip_listen" for each
	// gateway. An error stops Run.
	Listening func(addrs map[string]string) error
}

// Gateway is one instance of the demo group. An empty GossipListen is
// 127.0.0.1 with port 7946 for the first gateway, 7947 for the second, ...
type Gateway struct {
	Name, Listen, StatusListen string
	GossipListen               string
}

func (o *Options) defaults() {
	if o.AdminAddr == "" {
		o.AdminAddr = "127.0.0.1:8090"
	}
	if o.NodeAddr == "" {
		o.NodeAddr = "127.0.0.1:8091"
	}
	if o.Upstream == "" {
		o.Upstream = "127.0.0.1:9001"
	}
	if o.Gateways == nil {
		o.Gateways = []Gateway{
			{Name: "demo-1", Listen: "127.0.0.1:8080", StatusListen: "127.0.0.1:8085"},
			{Name: "demo-2", Listen: "127.0.0.1:8081", StatusListen: "127.0.0.1:8086"},
		}
	}
	// Gossip stays on loopback like everything else here; left to the
	// admin node, it would take ":7946", every interface.
	o.Gateways = slices.Clone(o.Gateways)
	for i := range o.Gateways {
		if o.Gateways[i].GossipListen == "" {
			o.Gateways[i].GossipListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(7946+i))
		}
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

const (
	domain = "dev"
	group  = "demo"
	host   = "local"
)

// Run starts the domain, sets it up on first use, prints how to use it,
// and runs until ctx is cancelled; then it stops everything, gateways
// included.
func Run(ctx context.Context, opts Options) (err error) {
	opts.defaults()
	log := opts.Logger
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "gatehouse-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts.Dir = dir
	}
	adminDir := filepath.Join(opts.Dir, "admin")
	nodeDir := filepath.Join(opts.Dir, "node")
	fresh := false
	var password string
	if _, err := os.Stat(filepath.Join(adminDir, adminnode.StoreFile)); errors.Is(err, os.ErrNotExist) {
		res, err := adminnode.Init(ctx, adminnode.InitOptions{DataDir: adminDir, Domain: domain})
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		fresh, password = true, res.Password
	}

	if !fresh {
		// The domain made by the first run knows its admin node (node.json)
		// and its upstream (the deployed configuration) by their addresses.
		for flag, addr := range map[string]string{"admin address": opts.AdminAddr, "upstream address": opts.Upstream} {
			if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
				return fmt.Errorf("dev: %s %s: port 0 with the domain of %s, which has its address from the run that made it; give that address", flag, addr, opts.Dir)
			}
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	run := func(name string, fn func() error) {
		wg.Go(func() {
			if err := fn(); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	defer wg.Wait()
	defer cancel()

	up := &http.Server{Handler: demo.Handler("orders"), ReadHeaderTimeout: 10 * time.Second}
	l, err := net.Listen("tcp", opts.Upstream)
	if err != nil {
		return fmt.Errorf("dev: demo upstream: %w", err)
	}
	opts.Upstream = l.Addr().String()
	run("demo upstream", func() error {
		go func() { <-ctx.Done(); up.Close() }()
		if err := up.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	adminBound := make(chan string, 1)
	run("admin node", func() error {
		return adminnode.Run(ctx, adminnode.RunOptions{DataDir: adminDir, Listen: opts.AdminAddr, Logger: log.Named("admin"),
			Listening: func(a map[string]string) error { adminBound <- a["listen"]; return nil }})
	})
	if opts.AdminAddr, err = bound(ctx, adminBound, errs); err != nil {
		return err
	}

	caPEM, err := os.ReadFile(filepath.Join(adminDir, adminnode.CACertFile))
	if err != nil {
		return err
	}
	adminURL := "https://" + opts.AdminAddr
	anon, err := client.New(client.Config{Address: adminURL, CACertPEM: caPEM})
	if err != nil {
		return err
	}
	if err := waitHealthy(ctx, anon, errs); err != nil {
		return err
	}
	envFile := filepath.Join(opts.Dir, "dev.env")
	if fresh {
		// The gateways' ports are held from their choice to the end, so
		// that nothing else takes them while the node manager (re)starts
		// the gateways on them.
		for i, g := range opts.Gateways {
			gw := &opts.Gateways[i]
			for _, r := range []struct {
				addr    *string
				reserve func(string) (string, func(), error)
			}{{&gw.Listen, reservePort}, {&gw.StatusListen, reservePort}, {&gw.GossipListen, reserveGossipPort}} {
				held, release, err := r.reserve(*r.addr)
				if err != nil {
					return fmt.Errorf("dev: gateway %s: %w", g.Name, err)
				}
				defer release()
				*r.addr = held
			}
		}
		if err := setUp(ctx, anon, caPEM, password, opts, envFile, adminURL); err != nil {
			return fmt.Errorf("dev: set up the domain: %w", err)
		}
	} else if declared, err := declaredGateways(ctx, adminURL, caPEM, envFile); err != nil {
		log.Warn("read the demo group's instances; the addresses printed are those of the flags", "error", err)
	} else {
		opts.Gateways = declared
	}
	nodeBound := make(chan string, 1)
	run("node manager", func() error {
		return nodemanager.Run(ctx, nodemanager.RunOptions{DataDir: nodeDir, Listen: opts.NodeAddr, GatewayBinary: opts.GatewayBin,
			Heartbeat: 2 * time.Second, DrainTimeout: 5 * time.Second, StopGateways: true, Advertise: "127.0.0.1", Logger: log.Named("node"),
			Listening: func(a map[string]string) error { nodeBound <- a["listen"]; return nil }})
	})
	if opts.NodeAddr, err = bound(ctx, nodeBound, errs); err != nil {
		return err
	}
	printUsage(opts, password, envFile, adminURL)
	if opts.Listening != nil {
		addrs := map[string]string{"admin_listen": opts.AdminAddr, "admin_url": adminURL, "node_listen": opts.NodeAddr,
			"upstream_listen": opts.Upstream}
		for _, g := range opts.Gateways {
			addrs[g.Name+"_listen"], addrs[g.Name+"_status_listen"] = g.Listen, g.StatusListen
			addrs[g.Name+"_gossip_listen"] = g.GossipListen
		}
		if err := opts.Listening(addrs); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// bound waits for the address a process started by Run reports, or for
// its failure.
func bound(ctx context.Context, addr <-chan string, errs <-chan error) (string, error) {
	select {
	case a := <-addr:
		return a, nil
	case err := <-errs:
		return "", err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// declaredGateways reads the demo group's instances of a reused domain,
// with the token of its dev.env: the addresses its gateways run on.
func declaredGateways(ctx context.Context, adminURL string, caPEM []byte, envFile string) ([]Gateway, error) {
	env, err := ReadEnvFile(envFile)
	if err != nil {
		return nil, err
	}
	token := env["GATEHOUSE_TOKEN"]
	if token == "" {
		return nil, fmt.Errorf("%s holds no GATEHOUSE_TOKEN", envFile)
	}
	c, err := client.New(client.Config{Address: adminURL, Token: token, CACertPEM: caPEM})
	if err != nil {
		return nil, err
	}
	list, err := c.ListInstances(ctx, client.InstanceFilter{Group: group})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("the demo group has no instances")
	}
	gws := make([]Gateway, 0, len(list))
	for _, in := range list {
		gws = append(gws, Gateway{Name: in.Name, Listen: in.Listen, StatusListen: in.StatusListen, GossipListen: in.GossipListen})
	}
	return gws, nil
}

func waitHealthy(ctx context.Context, c *client.Client, errs <-chan error) error {
	for {
		if _, err := c.Health(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setUp makes the demo group, joins the node, declares the instances,
// deploys the sample configuration and writes dev.env.
func setUp(ctx context.Context, anon *client.Client, caPEM []byte, password string, opts Options, envFile, adminURL string) error {
	login, err := anon.Login(ctx, adminnode.AdminUser, password)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{Address: adminURL, Token: login.Token, CACertPEM: caPEM})
	if err != nil {
		return err
	}
	tok, err := c.CreateToken(ctx, apitypes.TokenCreate{Name: "gatehouse dev"})
	if err != nil {
		return err
	}
	if _, err := c.CreateGroup(ctx, apitypes.Group{Name: group, Labels: map[string]string{"env": "dev"},
		Description: "the demo group of gatehouse dev"}); err != nil {
		return err
	}
	jt, err := c.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: host, TTL: "10m"})
	if err != nil {
		return err
	}
	if _, err := nodemanager.Join(ctx, nodemanager.JoinOptions{Admin: adminURL, Token: jt.Token,
		DataDir: filepath.Join(opts.Dir, "node"), CACertPEM: caPEM}); err != nil {
		return err
	}
	for _, g := range opts.Gateways {
		if _, err := c.CreateInstance(ctx, apitypes.Instance{Name: g.Name, Group: group, Host: host,
			Listen: g.Listen, StatusListen: g.StatusListen, GossipListen: g.GossipListen}); err != nil {
			return err
		}
	}
	cfg := []byte(strings.ReplaceAll(string(sample), "127.0.0.1:9001", opts.Upstream))
	d, err := c.GetDraft(ctx, group)
	if err != nil {
		return err
	}
	if _, err := c.PutDraft(ctx, group, cfg, "application/yaml", d.Version); err != nil {
		return err
	}
	if _, err := c.Deploy(ctx, group, apitypes.DeployRequest{Message: "sample configuration"}); err != nil {
		return err
	}
	return writeEnvFile(envFile, []envVar{
		{"GATEHOUSE_ADDR", adminURL},
		{"GATEHOUSE_TOKEN", tok.Secret},
		{"GATEHOUSE_CACERT", filepath.Join(opts.Dir, "admin", adminnode.CACertFile)},
	}, opts.CLIDir)
}

// gatewayLog is where the node manager's exec driver writes a gateway's
// output, in the node data dir of the domain in dir.
func gatewayLog(dir, name string) string {
	return filepath.Join(dir, "node", "instances", name, supervisor.LogFileName)
}

func printUsage(opts Options, password, envFile, adminURL string) {
	w := opts.Out
	fmt.Fprintf(w, "\nGatehouse dev domain in %s\n\n", opts.Dir)
	fmt.Fprintf(w, "  admin node     %s  (user admin", adminURL)
	if password != "" {
		fmt.Fprintf(w, ", password %s", password)
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "  node manager   http://%s/v1/instances\n", opts.NodeAddr)
	fmt.Fprintf(w, "  demo upstream  http://%s\n", opts.Upstream)
	for _, g := range opts.Gateways {
		fmt.Fprintf(w, "  gateway %-6s http://%s  (status http://%s/status)\n", g.Name, g.Listen, g.StatusListen)
		fmt.Fprintf(w, "                 log %s\n", gatewayLog(opts.Dir, g.Name))
	}
	fmt.Fprintf(w, `
Try:
  curl %[1]s/orders/42
  source %[2]s           # gatehouse on PATH, talking to this domain
  gatehouse status                 # the domain on one screen
  gatehouse group summary demo
  gatehouse instance list
  gatehouse config dump --group demo > demo.yaml   # edit, then:
  gatehouse config apply -f demo.yaml --group demo && gatehouse deploy --group demo -m "my change"

Ctrl-C stops everything.
`, "http://"+opts.Gateways[0].Listen, envFile)
}
