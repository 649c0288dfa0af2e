package localdomain

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
	"github.com/gatehouse/gatehouse/pki"
)

// The first administrator and the CA certificate admin init makes, as
// the binary's users know them: importing package adminnode for its
// constants would build the whole admin node into every benchmark
// program, which drives the binary through its clients only.
const (
	adminUser  = "admin"
	caCertFile = "ca.crt"
)

// Domain is one domain of a benchmark run: its work dir, its processes
// and an administrator's client.
type Domain struct {
	// Bin is the gatehouse binary, an absolute path.
	Bin string
	// Work holds the data dirs and the processes' logs (name.log).
	Work string
	// AdminDir is the admin node's data dir, under Work.
	AdminDir string
	// RunAdmin, when set before StartAdmin, is the admin node's command
	// instead of gatehouse admin run: a program that profiles it, say.
	RunAdmin func(dataDir, listen string) *exec.Cmd
	// StoreArgs, when set before StartAdmin, are added to admin init and
	// admin run: --store-file FILE for a domain kept in PostgreSQL.
	StoreArgs []string

	// Set by StartAdmin:
	AdminURL string
	CAFile   string
	CAPEM    []byte
	// API is logged in as the domain's first administrator.
	API *client.Client

	logf      func(format string, args ...any)
	adminAddr string
	anon      *client.Client
	admin     *Proc
	procs     []*Proc
	hosts     []*Host
}

// New checks the binary and makes the work dir; name goes into the work
// dir's name, logf tells the steps.
func New(bin, name string, logf func(format string, args ...any)) (*Domain, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("gatehouse binary: %w (build it: go build -o bin/gatehouse ./cmd/gatehouse)", err)
	}
	work, err := os.MkdirTemp("", "gatehouse-"+name+"-")
	if err != nil {
		return nil, err
	}
	return &Domain{Bin: bin, Work: work, AdminDir: filepath.Join(work, "admin"), logf: logf}, nil
}

// Admin is the admin node's process, nil before StartAdmin.
func (d *Domain) Admin() *Proc { return d.admin }

// StartAdmin inits the domain, starts its admin node, waits until it is
// healthy and logs in.
func (d *Domain) StartAdmin(ctx context.Context, domain string) error {
	addr, err := measure.FreeAddr()
	if err != nil {
		return err
	}
	pwFile := filepath.Join(d.Work, "password")
	password := measure.RandomHex(16)
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	d.logf("admin init (%s)", d.AdminDir)
	args := append([]string{"admin", "init", "--data-dir", d.AdminDir, "--domain", domain, "--password-file", pwFile}, d.StoreArgs...)
	if out, err := exec.CommandContext(ctx, d.Bin, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("admin init (%s): %w\n%s", d.Bin, err, out)
	}
	d.adminAddr = addr
	d.AdminURL = "https://" + addr
	d.CAFile = filepath.Join(d.AdminDir, caCertFile)
	if d.CAPEM, err = os.ReadFile(d.CAFile); err != nil {
		return err
	}
	if d.anon, err = client.New(client.Config{Address: d.AdminURL, CACertPEM: d.CAPEM}); err != nil {
		return err
	}
	if err := d.runAdmin(ctx); err != nil {
		return err
	}
	login, err := d.anon.Login(ctx, adminUser, password)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	d.API, err = client.New(client.Config{Address: d.AdminURL, CACertPEM: d.CAPEM, Token: login.Token})
	return err
}

// runAdmin starts the admin node on the domain's data dir and address and
// waits until it is healthy.
func (d *Domain) runAdmin(ctx context.Context) error {
	cmd := exec.Command(d.Bin, append([]string{"admin", "run", "--data-dir", d.AdminDir, "--listen", d.adminAddr}, d.StoreArgs...)...)
	if d.RunAdmin != nil {
		cmd = d.RunAdmin(d.AdminDir, d.adminAddr)
	}
	var err error
	if d.admin, err = d.start("admin", cmd); err != nil {
		return err
	}
	d.logf("admin node pid %d on %s: %s", d.admin.Pid(), d.adminAddr, strings.Join(cmd.Args, " "))
	// Opening the store walks every page of it: a large one takes a while.
	return d.admin.WaitUntil(ctx, 2*time.Minute, "admin node health", func() bool {
		_, err := d.anon.Health(ctx)
		return err == nil
	})
}

// RestartAdmin stops the admin node, calls between, and starts it again
// on the same data dir and address: its store is one process's at a
// time, so a benchmark that reads or fills it directly does so in
// between. The administrator's token is in the store and stays valid.
func (d *Domain) RestartAdmin(ctx context.Context, between func() error) error {
	d.admin.Stop()
	if err := between(); err != nil {
		return err
	}
	return d.runAdmin(ctx)
}

// JoinSimulated joins a simulated node manager as gatehouse node join
// does (its own P-256 key, a CSR without a name, the join token of its
// host) and returns its mutual-TLS client, whose requests timeout bounds.
// client.New makes a transport per client: each simulated node has its
// own connection, as each node manager has.
func (d *Domain) JoinSimulated(ctx context.Context, token string, timeout time.Duration) (*client.Client, error) {
	csrPEM, keyPEM, err := pki.NewCSR("")
	if err != nil {
		return nil, err
	}
	ans, err := d.anon.Join(ctx, token, csrPEM)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair([]byte(ans.Certificate), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}
	return client.New(client.Config{Address: d.AdminURL, CACertPEM: []byte(ans.CA),
		ClientCertificate: func() (*tls.Certificate, error) { return &cert, nil }, Timeout: timeout})
}

// JoinHost joins a host called name to the domain with node join; its
// node manager's data dir is Work/name.
func (d *Domain) JoinHost(ctx context.Context, name string) (*Host, error) {
	h := &Host{Name: name, Dir: filepath.Join(d.Work, name)}
	var err error
	if h.Local, err = measure.FreeAddr(); err != nil {
		return nil, err
	}
	jt, err := d.API.CreateJoinToken(ctx, apitypes.JoinTokenCreate{Host: name, TTL: "10m"})
	if err != nil {
		return nil, fmt.Errorf("create join token: %w", err)
	}
	d.logf("node join %s", name)
	if out, err := exec.CommandContext(ctx, d.Bin, "node", "join", "--admin", d.AdminURL, "--token", jt.Token,
		"--data-dir", h.Dir, "--ca-cert", d.CAFile).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("node join: %w\n%s", err, out)
	}
	d.hosts = append(d.hosts, h)
	return h, nil
}

// StartNode starts h's node manager (again, after a kill), logging JSON
// to Work/node-<host>.log.
func (d *Domain) StartNode(h *Host, heartbeat time.Duration) error {
	p, err := d.start("node-"+h.Name, exec.Command(d.Bin, "node", "run", "--data-dir", h.Dir, "--listen", h.Local,
		"--heartbeat", heartbeat.String(), "--drain-timeout", "2s", "--log-json"))
	if err != nil {
		return err
	}
	h.Node = p
	return nil
}

// Close stops the node managers, then their gateways (which outlive them
// by design: found by their pid files), then the admin node; it removes
// the work dir unless keep.
func (d *Domain) Close(keep bool) {
	for i := len(d.procs) - 1; i >= 0; i-- {
		if d.procs[i] != d.admin {
			d.procs[i].Stop()
		}
	}
	d.stopGateways()
	if d.admin != nil {
		d.admin.Stop()
	}
	if keep {
		d.logf("work dir kept: %s", d.Work)
	} else {
		os.RemoveAll(d.Work)
	}
}

// GatewayPIDs returns the running gateways of every host, from their pid
// files.
func (d *Domain) GatewayPIDs() []int {
	var pids []int
	for _, h := range d.hosts {
		pids = append(pids, h.gatewayPIDs()...)
	}
	return pids
}

func (d *Domain) stopGateways() {
	var ps []*os.Process
	for _, pid := range d.GatewayPIDs() {
		if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.SIGTERM) == nil {
			ps = append(ps, p)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range ps {
		for p.Signal(syscall.Signal(0)) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if p.Signal(syscall.Signal(0)) == nil {
			p.Kill()
		}
	}
}
