package nodemanager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/pki"
)

// Files of a node manager's data directory (docs/node-manager.md).
const (
	IdentityFile = "node.json"
	CertFile     = "node.crt"
	KeyFile      = "node.key"
	CAFile       = "ca.crt"
	StateFile    = "node.db"
)

// Identity is what joining gave the node manager, kept in node.json.
type Identity struct {
	// Admin is the address (or comma-separated addresses) the node joined
	// through, which `node run` uses unless given others.
	Admin  string `json:"admin"`
	Domain string `json:"domain"`
	Host   string `json:"host"`
	// SigningKey is the domain's deployment key ("ed25519:…"), handed to
	// the gateways, which verify every deployment with it.
	SigningKey string    `json:"signing_key"`
	JoinedAt   time.Time `json:"joined_at"`
}

// JoinOptions say where and how to join.
type JoinOptions struct {
	// Admin is the admin node's URL, https://admin:8090, or several
	// admin nodes' URLs separated by commas (client.Config.Addresses).
	Admin   string
	Token   string
	DataDir string
	// CAFingerprint pins the domain CA ("SHA256:…"); CACertPEM trusts a CA
	// certificate given as a file instead. One is required: a node must
	// never trust whatever certificate the network shows it.
	CAFingerprint string
	CACertPEM     []byte
	Now           func() time.Time
}

// Join makes the node's key, has the admin node sign its request with the
// join token, and stores the identity, certificate, key and CA in the data
// dir. It refuses a data dir that already holds an identity.
func Join(ctx context.Context, opts JoinOptions) (Identity, error) {
	if opts.Admin == "" || opts.Token == "" || opts.DataDir == "" {
		return Identity{}, errors.New("join: --addr, --token and --data-dir are required")
	}
	if (opts.CAFingerprint == "") == (opts.CACertPEM == nil) {
		return Identity{}, errors.New("join: give the domain CA's fingerprint (--ca-fingerprint, printed by `gatehouse admin init` and `gatehouse token create --host`) or its certificate (--ca-cert), one of them")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if _, err := os.Stat(filepath.Join(opts.DataDir, IdentityFile)); err == nil {
		return Identity{}, fmt.Errorf("join: %s already holds a node identity (%s): a node joins once; delete the data dir to join again", opts.DataDir, IdentityFile)
	}
	c, err := client.New(client.Config{Address: opts.Admin, CAFingerprint: opts.CAFingerprint, CACertPEM: opts.CACertPEM})
	if err != nil {
		return Identity{}, fmt.Errorf("join: %w", err)
	}
	// The request carries no name: the token names the host, and the
	// admin node puts that name in the certificate.
	csrPEM, keyPEM, err := pki.NewCSR("")
	if err != nil {
		return Identity{}, fmt.Errorf("join: %w", err)
	}
	ans, err := c.Join(ctx, opts.Token, csrPEM)
	if err != nil {
		return Identity{}, fmt.Errorf("join %s: %w", opts.Admin, err)
	}
	if _, err := deploy.ParsePublicKey(ans.SigningKey); err != nil {
		return Identity{}, fmt.Errorf("join: the admin node's signing key: %w", err)
	}
	id := Identity{Admin: opts.Admin, Domain: ans.Domain, Host: ans.Host, SigningKey: ans.SigningKey, JoinedAt: opts.Now().UTC()}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return Identity{}, fmt.Errorf("join: %w", err)
	}
	data, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return Identity{}, err
	}
	// The identity file is written last: its presence means a complete
	// join.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{KeyFile, keyPEM, 0o600},
		{CertFile, []byte(ans.Certificate), 0o644},
		{CAFile, []byte(ans.CA), 0o644},
		{IdentityFile, data, 0o644},
	} {
		if err := writeFile(filepath.Join(opts.DataDir, f.name), f.data, f.mode); err != nil {
			return Identity{}, fmt.Errorf("join: %w", err)
		}
	}
	return id, nil
}

// writeFile writes data to a temporary file and renames it, so that a
// crash never leaves a half-written certificate or key.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadIdentity reads the identity a join left in dir.
func LoadIdentity(dir string) (Identity, error) {
	data, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Identity{}, fmt.Errorf("%s holds no node identity: run `gatehouse node join` first", dir)
	}
	if err != nil {
		return Identity{}, err
	}
	var id Identity
	if err := json.Unmarshal(data, &id); err != nil {
		return Identity{}, fmt.Errorf("read %s: %w", IdentityFile, err)
	}
	return id, nil
}

// certs holds the node's current certificate, swapped when renewed.
type certs struct {
	dir string
	mu  sync.Mutex
	cur *tls.Certificate
}

// prevKeyFile keeps the key of the certificate being replaced while a
// renewal writes the new key and certificate, two files that cannot be
// replaced in one step: a node manager that dies between the two finds
// the certificate still old and its key here.
const prevKeyFile = KeyFile + ".prev"

func loadCerts(dir string) (*certs, error) {
	c := &certs{dir: dir}
	certPath, keyPath, prevPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile), filepath.Join(dir, prevKeyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		prev, perr := tls.LoadX509KeyPair(certPath, prevPath)
		if perr != nil {
			return nil, fmt.Errorf("load node certificate: %w", err)
		}
		// A renewal stopped after the new key: the old pair stands.
		key, rerr := os.ReadFile(prevPath)
		if rerr == nil {
			rerr = writeFile(keyPath, key, 0o600)
		}
		if rerr != nil {
			return nil, fmt.Errorf("load node certificate: put back the key of an unfinished renewal: %w", rerr)
		}
		cert = prev
	}
	if err := os.Remove(prevPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load node certificate: %w", err)
	}
	if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
		return nil, fmt.Errorf("parse node certificate: %w", err)
	}
	c.cur = &cert
	return c, nil
}

func (c *certs) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur, nil
}

// renewIfDue renews the certificate in its last third of life, or when
// it comes from a root that no longer issues (a CA rotation), writing the
// trust bundle the admin node sends, then the new key and certificate,
// before using them.
func (c *certs) renewIfDue(ctx context.Context, admin *client.Client, host string, tr *trust, now time.Time) (bool, error) {
	cur, _ := c.get()
	if !pki.NeedsRenewal(cur.Leaf, now) && tr.fromIssuer(cur.Leaf) {
		return false, nil
	}
	csrPEM, keyPEM, err := pki.NewCSR(host)
	if err != nil {
		return false, err
	}
	ans, err := admin.Renew(ctx, csrPEM)
	if err != nil {
		return false, fmt.Errorf("renew the certificate of host %s: %w", host, err)
	}
	cert, err := tls.X509KeyPair([]byte(ans.Certificate), keyPEM)
	if err != nil {
		return false, fmt.Errorf("renewed certificate: %w", err)
	}
	if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
		return false, err
	}
	if ans.CA != "" {
		if _, err := tr.update([]byte(ans.CA)); err != nil {
			return false, err
		}
	}
	// The key of the certificate on disk is the one in use: the files
	// change only with c.cur.
	oldKey, err := x509.MarshalPKCS8PrivateKey(cur.PrivateKey)
	if err != nil {
		return false, fmt.Errorf("renewed certificate: keep the current key: %w", err)
	}
	steps := renewalSteps(c.dir, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: oldKey}), keyPEM, []byte(ans.Certificate))
	for i, step := range steps {
		if err := step(); err != nil {
			return false, fmt.Errorf("renewed certificate: %w", err)
		}
		if i == len(steps)-2 {
			// The new pair is on disk.
			c.mu.Lock()
			c.cur = &cert
			c.mu.Unlock()
		}
	}
	return true, nil
}

// renewalSteps replace the node's key and certificate, in an order
// loadCerts recovers from whichever step was the last done: the current
// key kept aside, the new key, the new certificate, the kept key dropped.
func renewalSteps(dir string, oldKeyPEM, keyPEM, certPEM []byte) []func() error {
	return []func() error{
		func() error { return writeFile(filepath.Join(dir, prevKeyFile), oldKeyPEM, 0o600) },
		func() error { return writeFile(filepath.Join(dir, KeyFile), keyPEM, 0o600) },
		func() error { return writeFile(filepath.Join(dir, CertFile), certPEM, 0o644) },
		func() error { return os.Remove(filepath.Join(dir, prevKeyFile)) },
	}
}

// checkEvery is how often the certificate is looked at: a twelfth of its
// life, at most an hour, so that a short-lived certificate is renewed
// well inside its last third.
func (c *certs) checkEvery() time.Duration {
	cur, _ := c.get()
	return min(time.Hour, max(cur.Leaf.NotAfter.Sub(cur.Leaf.NotBefore)/12, time.Second))
}
