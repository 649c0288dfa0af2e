package localdomain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/bench/internal/measure"
)

// AdminNode is one admin node of the domain: its data dir, its address
// and an administrator's client of it alone.
type AdminNode struct {
	// Name is its log's name: admin, admin-b, admin-c, …
	Name, Dir, Addr, URL string
	// API is logged in as the domain's first administrator (the token
	// is the domain's: it holds on every admin node) and talks to this
	// admin node only.
	API  *client.Client
	anon *client.Client
	proc *Proc
}

// Proc is the admin node's process, the last one started.
func (a *AdminNode) Proc() *Proc { return a.proc }

// Admins returns the admin nodes, the first (StartAdmin's) first.
func (d *Domain) Admins() []*AdminNode { return d.admins }

func (d *Domain) newAdminNode(name, dir, addr string) (*AdminNode, error) {
	a := &AdminNode{Name: name, Dir: dir, Addr: addr, URL: "https://" + addr}
	var err error
	if a.anon, err = client.New(client.Config{Address: a.URL, CACertPEM: d.CAPEM}); err != nil {
		return nil, err
	}
	d.admins = append(d.admins, a)
	return a, nil
}

// runAdmin starts admin node a on its data dir and address and waits
// until it is healthy.
func (d *Domain) runAdmin(ctx context.Context, a *AdminNode) error {
	cmd := exec.Command(d.Bin, "admin", "run", "--data-dir", a.Dir, "--listen", a.Addr)
	if d.StoreFile != "" {
		cmd.Args = append(cmd.Args, "--store-file", d.StoreFile)
	}
	if d.RunAdmin != nil {
		cmd = d.RunAdmin(a.Dir, a.Addr)
	}
	p, err := d.start(a.Name, cmd)
	if err != nil {
		return err
	}
	p.admin = true
	a.proc = p
	if a == d.admins[0] {
		d.admin = p
	}
	d.logf("%s pid %d on %s: %s", a.Name, p.Pid(), a.Addr, strings.Join(cmd.Args, " "))
	// Opening the store walks every page of it: a large one takes a while.
	return p.WaitUntil(ctx, 2*time.Minute, a.Name+" health", func() bool {
		_, err := a.anon.Health(ctx)
		return err == nil
	})
}

// StartAdminNode starts admin node a again, after it was stopped or
// killed, on the same data dir and address, and waits until it is
// healthy.
func (d *Domain) StartAdminNode(ctx context.Context, a *AdminNode) error {
	select {
	case <-a.proc.Done():
	default:
		return fmt.Errorf("%s (pid %d) is still running", a.Name, a.proc.Pid())
	}
	return d.runAdmin(ctx, a)
}

// AddAdmin makes another admin node of a domain in PostgreSQL as an
// operator would: gatehouse admin keys export on the first admin node
// (once), gatehouse admin init --join with that key bundle into a data
// dir of its own; then starts it on a free port and waits until it is
// healthy.
func (d *Domain) AddAdmin(ctx context.Context) (*AdminNode, error) {
	if d.StoreFile == "" || len(d.admins) == 0 {
		return nil, errors.New("another admin node needs a domain in PostgreSQL (StartPostgres, then StartAdmin)")
	}
	bundle := filepath.Join(d.Work, "domain.ghk")
	pass := filepath.Join(d.Work, "bundle-passphrase")
	if _, err := os.Stat(bundle); err != nil {
		if err := os.WriteFile(pass, []byte(measure.RandomHex(16)+"\n"), 0o600); err != nil {
			return nil, err
		}
		d.logf("admin keys export")
		if out, err := exec.CommandContext(ctx, d.Bin, "admin", "keys", "export", "--data-dir", d.AdminDir, "--to", bundle,
			"--passphrase-file", pass).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("admin keys export: %w\n%s", err, out)
		}
	}
	name := fmt.Sprintf("admin-%c", 'a'+len(d.admins))
	dir := filepath.Join(d.Work, name)
	d.logf("admin init --join (%s)", dir)
	if out, err := exec.CommandContext(ctx, d.Bin, "admin", "init", "--join", bundle, "--passphrase-file", pass,
		"--store-file", d.StoreFile, "--data-dir", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("admin init --join: %w\n%s", err, out)
	}
	addr, err := measure.FreeAddr()
	if err != nil {
		return nil, err
	}
	a, err := d.newAdminNode(name, dir, addr)
	if err != nil {
		return nil, err
	}
	if err := d.runAdmin(ctx, a); err != nil {
		return nil, err
	}
	a.API, err = client.New(client.Config{Address: a.URL, CACertPEM: d.CAPEM, Token: d.token})
	return a, err
}
