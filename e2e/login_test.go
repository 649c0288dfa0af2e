package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// loginClient logs in to an admin node from one loopback address, as
// one person at one machine would.
type loginClient struct {
	base string
	hc   *http.Client
}

func newLoginClient(t *testing.T, base, caFile, from string) *loginClient {
	t.Helper()
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("no certificate in %s", caFile)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &loginClient{base: base, hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

// login answers the status, Retry-After and the token of a login.
func (c *loginClient) login(t *testing.T, user, password string, headers ...string) (code int, retryAfter, token string) {
	t.Helper()
	body, _ := json.Marshal(apitypes.LoginRequest{User: user, Password: password})
	req, err := http.NewRequest("POST", c.base+apitypes.Prefix+"/auth/login", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var ok apitypes.LoginResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &ok); err != nil {
			t.Fatalf("login answer %s: %v", data, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), ok.Token
}

// TestLoginAttackerDoesNotLockOutAdmin runs a real admin node and guesses
// admin's password from 127.0.0.2 while the real admin logs in from
// 127.0.0.1: the guesser gets 5 free failures and then growing delays;
// the real admin is never refused. A forged X-Forwarded-For changes
// nothing: the admin node counts the TCP peer.
func TestLoginAttackerDoesNotLockOutAdmin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "admin")
	cli := newAdminCLI(t, &transcript{})
	out := cli.ok(t, "", "admin", "init", "--data-dir", dir, "--domain", "e2e")
	pw := regexp.MustCompile(`Generated password for admin \(shown once\): (\S+)`).FindStringSubmatch(out)
	fp := regexp.MustCompile(`Node managers pin this CA: (SHA256:[0-9a-fA-F]{64})\n`).FindStringSubmatch(out)
	if pw == nil || fp == nil {
		t.Fatalf("admin init said:\n%s", out)
	}
	password := pw[1]
	node := startAdminNode(t, dir, "127.0.0.1:0", fp[1])
	base, caFile := "https://"+node.listen, filepath.Join(dir, "ca.crt")
	attacker := newLoginClient(t, base, caFile, "127.0.0.2")
	admin := newLoginClient(t, base, caFile, "127.0.0.1")

	var failedFrom time.Time
	for i := range 5 {
		failedFrom = time.Now()
		if code, _, _ := attacker.login(t, "admin", "not the password"); code != http.StatusUnauthorized {
			t.Fatalf("attacker's failure %d: status %d, want 401", i+1, code)
		}
	}
	code, retry, _ := attacker.login(t, "admin", password, "X-Forwarded-For", "127.0.0.1")
	checkDelayed(t, "attacker after 5 failures", code, retry, time.Second, time.Since(failedFrom))
	code, _, token := admin.login(t, "admin", password)
	if code != http.StatusOK || token == "" {
		t.Fatalf("admin from 127.0.0.1 while 127.0.0.2 is refused: status %d", code)
	}
	whoami := newAdminAPI(t, base, caFile, token)
	if code, _, body := whoami.do(t, "GET", "/auth/whoami", ""); code != http.StatusOK {
		t.Fatalf("whoami with the admin's login token: %d %s", code, body)
	}

	// The delay doubles: once the attacker may try again, one more
	// failure costs 2 s, the next 4 s.
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second} {
		var code int
		waitfor.Cond(t, 10*time.Second, "the attacker's address let in again", func() (bool, string) {
			failedFrom = time.Now()
			code, _, _ = attacker.login(t, "admin", "still not it")
			return code != http.StatusTooManyRequests, fmt.Sprintf("status %d", code)
		})
		if code != http.StatusUnauthorized {
			t.Fatalf("attacker after the delay: status %d, want 401", code)
		}
		code, retry, _ := attacker.login(t, "admin", password)
		checkDelayed(t, "attacker right after a failure", code, retry, want, time.Since(failedFrom))
		if code, _, _ := admin.login(t, "admin", password); code != http.StatusOK {
			t.Fatalf("admin from 127.0.0.1 while the attacker is delayed: status %d", code)
		}
	}

	// The audit log names the real peers, not the forged header.
	code, _, body := whoami.do(t, "GET", "/audit?action=auth.login", "")
	if code != http.StatusOK {
		t.Fatalf("audit: %d %s", code, body)
	}
	var entries []apitypes.AuditEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		t.Fatal(err)
	}
	sources := map[string]map[string]int{}
	for _, e := range entries {
		if sources[e.Source] == nil {
			sources[e.Source] = map[string]int{}
		}
		sources[e.Source][e.Result]++
	}
	if len(sources) != 2 || sources["127.0.0.1"]["denied"] != 0 || sources["127.0.0.2"]["ok"] != 0 {
		t.Errorf("login audit by source and result: %v", sources)
	}
	if strings.Contains(node.out.String(), password) {
		t.Error("the admin node logged the password")
	}
}

// checkDelayed checks the answer to a login of an address that failed
// within since (from before the failing request was sent to after this
// answer): refused with a Retry-After of the rest of delay, in whole
// seconds rounded up — unless the machine took longer than delay, when
// the address may be let in again.
func checkDelayed(t *testing.T, what string, code int, retry string, delay, since time.Duration) {
	t.Helper()
	if since >= delay {
		t.Logf("%s: %s passed since the failure, more than the %s delay: status %d", what, since, delay, code)
		return
	}
	low := int(math.Ceil((delay - since).Seconds()))
	high := int(delay.Seconds())
	got, err := strconv.Atoi(retry)
	if code != http.StatusTooManyRequests || err != nil || got < low || got > high {
		t.Fatalf("%s: status %d, Retry-After %q; want 429 and %d–%d s (%s since the failure)", what, code, retry, low, high, since)
	}
}
