package adminnode

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

func TestRunRefusesDataDirWithoutDomain(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"empty dir", func(*testing.T, string) {}},
		{"store without domain", func(t *testing.T, dir string) {
			s, err := store.Open(filepath.Join(dir, StoreFile))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		}},
		{"interrupted init", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("partial"), 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			_, hadStore := os.Stat(filepath.Join(dir, StoreFile))
			err := Run(context.Background(), RunOptions{DataDir: dir, Listen: "127.0.0.1:0"})
			want := "no domain in " + dir + ": run gatehouse admin init first"
			if err == nil || err.Error() != want {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if _, err := os.Stat(filepath.Join(dir, StoreFile)); errors.Is(hadStore, fs.ErrNotExist) && err == nil {
				t.Error("Run created an empty store")
			}
		})
	}
}

func TestRunRefusesMismatchedKeys(t *testing.T) {
	other := t.TempDir()
	initDomain(t, other, "other", "")
	tests := []struct {
		name  string
		files []string // copied from the other domain
		want  string
	}{
		{"signing key", []string{SigningKeyFile}, "is not the signing key of domain acme"},
		{"CA", []string{CACertFile, CAKeyFile}, "is not the CA of domain acme"},
		{"CA key alone", []string{CAKeyFile}, "key does not belong to the certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			initDomain(t, dir, "acme", "")
			for _, name := range tt.files {
				b, err := os.ReadFile(filepath.Join(other, name))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := Run(context.Background(), RunOptions{DataDir: dir, Listen: "127.0.0.1:0"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// readyLog is a log output that hands over the fields of the "admin node
// ready" line.
type readyLog struct {
	w     *io.PipeWriter
	ready chan map[string]any
}

func newReadyLog(t *testing.T) *readyLog {
	r, w := io.Pipe()
	l := &readyLog{w: w, ready: make(chan map[string]any, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["@message"] == "admin node ready" {
				l.ready <- line
			}
		}
	}()
	t.Cleanup(func() { w.Close() })
	return l
}

func (l *readyLog) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: l.w, JSONFormat: true, Level: hclog.Debug})
}

// startRun runs the admin node on dir and returns its address and a
// function that stops it and returns Run's result.
func startRun(t *testing.T, opts RunOptions) (addr string, stop func() error) {
	t.Helper()
	logs := newReadyLog(t)
	opts.Listen = "127.0.0.1:0"
	opts.Logger = logs.logger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
			return nil
		}
	}
	select {
	case line := <-logs.ready:
		addr, _ = line["address"].(string)
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("admin node not ready after 5s")
	}
	return addr, stop
}

func TestRunServesHTTPS(t *testing.T) {
	dir := t.TempDir()
	initDomain(t, dir, "acme", "")
	addr, stop := startRun(t, RunOptions{DataDir: dir})
	_, port, _ := strings.Cut(addr, ":")

	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	block, _ := pem.Decode(caPEM)

	for _, host := range []string{"localhost", "127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			defer client.CloseIdleConnections()
			resp, err := client.Get("https://" + host + ":" + port + "/api/v1/health")
			if err != nil {
				t.Fatalf("GET health: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
			st := resp.TLS
			if st.Version < tls.VersionTLS12 {
				t.Errorf("TLS version %x", st.Version)
			}
			chain := st.PeerCertificates
			if len(chain) != 2 || !bytes.Equal(chain[1].Raw, block.Bytes) {
				t.Errorf("served chain has %d certificates, want the leaf then the CA", len(chain))
			}
			if ttl := chain[0].NotAfter.Sub(chain[0].NotBefore); ttl > ServerCertTTL+10*time.Minute {
				t.Errorf("server certificate valid for %v, want about %v", ttl, ServerCertTTL)
			}
		})
	}

	old := &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		conn.Close()
		t.Error("TLS 1.1 handshake succeeded")
	}

	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if _, err := http.Get("http://" + addr); err == nil {
		t.Error("still listening after Run returned")
	}
	// The store was closed: another process may open it at once.
	s, err := store.Open(filepath.Join(dir, StoreFile))
	if err != nil {
		t.Fatalf("store after Run: %v", err)
	}
	s.Close()
}

func TestRunInsecureHTTP(t *testing.T) {
	dir := t.TempDir()
	initDomain(t, dir, "acme", "")
	addr, stop := startRun(t, RunOptions{DataDir: dir, InsecureHTTP: true})
	resp, err := http.Get("http://" + addr + "/api/v1/health")
	if err != nil {
		t.Fatalf("GET health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}
