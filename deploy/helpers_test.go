package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"
)

// testKeyPair is a self-signed certificate and its key, generated once per
// test binary so that no private key is committed.
type testKeyPair struct {
	cert, key string
}

func newTestKeyPair() testKeyPair {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "api.example.com"},
		DNSNames:     []string{"api.example.com", "*.api.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return testKeyPair{
		cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
	}
}

var (
	keyPairA = sync.OnceValue(newTestKeyPair)
	keyPairB = sync.OnceValue(newTestKeyPair)
)

// errorLines returns the lines of err, which must be Errors or nil.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return lines
}

// testKinds stands for policy/catalog, which deploy's tests cannot import
// (it imports deploy). It knows the names of the catalog's kinds; its
// check refuses a configuration whose "upstream" or "consumer" names what
// the configuration lacks, reports every other key whose value is "bad"
// at that key (a path relative to the policy's config), and returns
// "error" as a plain error. policy/catalog's tests check the real kinds
// through Validate.
var testKinds PolicyKinds = fakeKinds{}

type fakeKinds struct{}

func (fakeKinds) PolicyChecker(cfg *Config) PolicyChecker {
	c := fakeChecker{upstreams: map[string]bool{}, consumers: map[string]bool{}}
	for _, u := range cfg.Upstreams {
		c.upstreams[u.Name] = true
	}
	for _, con := range cfg.Consumers {
		c.consumers[con.Name] = true
	}
	return c
}

type fakeChecker struct {
	upstreams, consumers map[string]bool
}

func (fakeChecker) Known(name string) bool {
	switch name {
	case "key-auth", "basic-auth", "jwt-auth", "external", "http-log", "rate-limit", "request-id",
		"proxy-rewrite", "ip-restriction", "cors", "request-size-limit", "traffic-split",
		"request-headers", "response-headers":
		return true
	}
	return false
}

func (c fakeChecker) Check(name string, config map[string]any) error {
	if msg, ok := config["error"].(string); ok {
		return errors.New(msg)
	}
	var es Errors
	for _, k := range slices.Sorted(maps.Keys(config)) {
		v, _ := config[k].(string)
		switch {
		case k == "upstream" && !c.upstreams[v]:
			es.Addf(k, "unknown upstream %q", v)
		case k == "consumer" && !c.consumers[v]:
			es.Addf(k, "unknown consumer %q", v)
		case v == "bad":
			es.Add(k, "is bad")
		}
	}
	return es.Err()
}
