package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

const hmacSecret = "alice's HMAC secret"

var testKeys = sync.OnceValues(func() (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return rk, ek
})

func publicPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// jwtConsumers adds JWT credentials to the fixture: alice verifies HS256
// tokens of subject "alice" and RS256 ones of "alice-rsa", bob ES256
// tokens of "bob"; carol and dave share the subject "shared".
func jwtConsumers(t testing.TB) *policy.Consumers {
	rk, ek := testKeys()
	cs := consumers()
	cs.AddJWT(cs.Named("alice"), "alice", hmacSecret)
	cs.AddJWT(cs.Named("alice"), "alice-rsa", publicPEM(t, &rk.PublicKey))
	cs.AddJWT(cs.Named("bob"), "bob", publicPEM(t, &ek.PublicKey))
	cs.AddJWT(cs.Add("carol"), "shared", "carol's secret")
	cs.AddJWT(cs.Add("dave"), "shared", "dave's secret")
	return cs
}

func segment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign makes a token of claims signed with alg under key (an HMAC secret
// string, or a private key); header fields are added to the JOSE header.
func sign(t testing.TB, alg string, key any, claims map[string]any, header ...any) string {
	t.Helper()
	h := map[string]any{"alg": alg, "typ": "JWT"}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i].(string)] = header[i+1]
	}
	input := segment(t, h) + "." + segment(t, claims)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case string:
		m := hmac.New(sha256.New, []byte(k))
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:]); err != nil {
			t.Fatal(err)
		}
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case nil:
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestJWTAuth(t *testing.T) {
	rk, ek := testKeys()
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	unix := func(d time.Duration) float64 { return float64(now.Add(d).Unix()) }
	claims := func(sub string, kv ...any) map[string]any {
		m := map[string]any{"sub": sub}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	bearer := func(tok string) [][2]string { return [][2]string{{"Authorization", "Bearer " + tok}} }
	alice := outcome{consumer: "alice", credential: "jwt"}
	hs := sign(t, "HS256", hmacSecret, claims("alice", "exp", unix(time.Hour)))

	tests := []struct {
		name    string
		config  string
		headers [][2]string
		query   string
		want    outcome
	}{
		{"HS256", `{}`, bearer(hs), "", alice},
		{"RS256", `{}`, bearer(sign(t, "RS256", rk, claims("alice-rsa"))), "", alice},
		{"ES256", `{}`, bearer(sign(t, "ES256", ek, claims("bob"))), "",
			outcome{consumer: "bob", credential: "jwt"}},
		{"shared subject", `{}`, bearer(sign(t, "HS256", "dave's secret", claims("shared"))), "",
			outcome{consumer: "dave", credential: "jwt"}},
		{"bearer any case", `{}`, [][2]string{{"authorization", "bearer  " + hs}}, "", alice},
		{"missing", `{}`, nil, "", outcome{message: "missing token"}},
		{"other scheme", `{}`, [][2]string{{"Authorization", "Basic " + hs}}, "", outcome{message: "missing token"}},
		{"own header", `{"header": "X-Token"}`, [][2]string{{"X-Token", hs}}, "", alice},
		{"own header with bearer", `{"header": "X-Token"}`, [][2]string{{"X-Token", "Bearer " + hs}}, "", alice},
		{"query", `{"query": "jwt"}`, nil, "a=1&jwt=" + hs, alice},
		{"cookie", `{"cookie": "session"}`, [][2]string{{"Cookie", "theme=dark; session=" + hs + "; x=y"}}, "", alice},
		{"header before query", `{"query": "jwt"}`, bearer("x.y.z"), "jwt=" + hs, outcome{message: "malformed token"}},

		{"two segments", `{}`, bearer("abc.def"), "", outcome{message: "malformed token"}},
		{"four segments", `{}`, bearer(hs + ".x"), "", outcome{message: "malformed token"}},
		{"bad base64", `{}`, bearer("!!." + strings.SplitN(hs, ".", 2)[1]), "", outcome{message: "malformed token"}},
		{"payload not an object", `{}`, bearer(sign(t, "HS256", hmacSecret, nil)), "", outcome{message: "malformed token"}},
		{"alg none", `{}`, bearer(sign(t, "none", nil, claims("alice"))), "",
			outcome{message: "token algorithm not allowed"}},
		{"alg HS512", `{}`, bearer(sign(t, "HS512", hmacSecret, claims("alice"))), "",
			outcome{message: "token algorithm not allowed"}},
		{"alg not configured", `{"algorithms": ["HS256", "ES256"]}`, bearer(sign(t, "RS256", rk, claims("alice-rsa"))), "",
			outcome{message: "token algorithm not allowed"}},
		{"crit", `{}`, bearer(sign(t, "HS256", hmacSecret, claims("alice"), "crit", []string{"b64"})), "",
			outcome{message: "token has unsupported critical headers"}},
		{"no subject", `{}`, bearer(sign(t, "HS256", hmacSecret, map[string]any{"name": "x"})), "",
			outcome{message: "token has no subject"}},
		{"subject not a string", `{}`, bearer(sign(t, "HS256", hmacSecret, map[string]any{"sub": 7})), "",
			outcome{message: "token has no subject"}},
		{"unknown subject", `{}`, bearer(sign(t, "HS256", hmacSecret, claims("mallory"))), "",
			outcome{message: "unknown token subject"}},
		{"wrong secret", `{}`, bearer(sign(t, "HS256", "guess", claims("alice"))), "",
			outcome{message: "invalid token signature"}},
		{"wrong EC key", `{}`, bearer(sign(t, "ES256", otherEC, claims("bob"))), "",
			outcome{message: "invalid token signature"}},
		{"tampered payload", `{}`, bearer(segment(t, map[string]any{"alg": "HS256"}) + "." +
			segment(t, claims("alice", "admin", true)) + "." + strings.Split(hs, ".")[2]), "",
			outcome{message: "invalid token signature"}},
		// The public key as an HMAC secret: the key's form, not the
		// token, decides the algorithm.
		{"algorithm confusion", `{}`, bearer(sign(t, "HS256", publicPEM(t, &rk.PublicKey), claims("alice-rsa"))), "",
			outcome{message: "invalid token signature"}},

		{"expired", `{}`, bearer(sign(t, "HS256", hmacSecret, claims("alice", "exp", unix(-time.Minute)))), "",
			outcome{message: "token expired"}},
		{"expired within skew", `{}`, bearer(sign(t, "HS256", hmacSecret, claims("alice", "exp", unix(-10*time.Second)))), "", alice},
		{"expired without skew", `{"clock_skew": "0s"}`, bearer(sign(t, "HS256", hmacSecret, claims("alice", "exp", unix(-10*time.Second)))), "",
			outcome{message: "token expired"}},
		{"exp not a number", `{}`, bearer(sign(t, "HS256", hmacSecret, claims("alice", "exp", "tomorrow"))), "",
			outcome{message: "malformed token"}},
		{"not yet valid", `{}`, bearer(sign(t, "HS256", hmacSecret, claims("alice", "nbf", unix(time.Minute)))), "",
			outcome{message: "token not yet valid"}},
		{"nbf within skew", `{}`, bearer(sign(t, "HS256", hmacSecret, claims("alice", "nbf", unix(10*time.Second)))), "", alice},
		{"nbf passed", `{}`, bearer(sign(t, "HS256", hmacSecret, claims("alice", "nbf", unix(-time.Hour)))), "", alice},

		{"required claims", `{"required_claims": ["exp"]}`, bearer(hs), "", alice},
		{"required claim missing", `{"required_claims": ["exp", "email"]}`, bearer(hs), "",
			outcome{message: `token lacks required claim "email"`}},
		{"subject claim", `{"subject_claim": "client_id"}`,
			bearer(sign(t, "HS256", hmacSecret, map[string]any{"sub": "x", "client_id": "alice"})), "", alice},
	}
	env := policytest.Env(jwtConsumers(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policytest.Build(t, jwtAuthKind, tt.config, env)
			req := policytest.Get("/?" + tt.query)
			req.Headers = tt.headers
			c, ok := policytest.Run(p, req)
			challenge := `Bearer realm="gatehouse", error="invalid_token"`
			if tt.want.message == "missing token" {
				challenge = `Bearer realm="gatehouse"`
			}
			check(t, c, ok, tt.want, challenge)
			if a, _ := c.Answer(); strings.Contains(a.Message, "eyJ") {
				t.Errorf("message %q quotes the token", a.Message)
			}
		})
	}
}

func TestJWTAuthClaims(t *testing.T) {
	p := policytest.Build(t, jwtAuthKind, `{"claims_to_headers": {
		"email": "X-User-Email", "admin": "X-Admin", "level": "X-Level",
		"groups": "X-Groups", "missing": "X-Missing", "evil": "X-Evil"}}`,
		policytest.Env(jwtConsumers(t)))
	tok := sign(t, "HS256", hmacSecret, map[string]any{
		"sub": "alice", "email": "alice@example.com", "admin": true, "level": 3,
		"groups": []string{"ops", "dev"}, "evil": "a\r\nX-Injected: 1",
	})
	req := policytest.Get("/", "Authorization", "Bearer "+tok,
		"X-Missing", "sent by the client", "X-Admin", "false", "X-Evil", "client")
	c, ok := policytest.Run(p, req)
	if !ok {
		a, _ := c.Answer()
		t.Fatalf("refused: %s", a.Message)
	}
	if c.Claims["email"] != "alice@example.com" || c.Claims["level"] != 3.0 {
		t.Errorf("claims %v", c.Claims)
	}
	got := policytest.RequestHeaders(c, req)
	delete(got, "authorization")
	want := map[string][]string{
		"x-user-email": {"alice@example.com"},
		"x-admin":      {"true"},
		"x-level":      {"3"},
		"x-groups":     {`["ops","dev"]`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("upstream headers %v, want %v", got, want)
	}
}

func TestJWTAuthConfigErrors(t *testing.T) {
	env := policytest.Env(jwtConsumers(t))
	checkErrors(t, jwtAuthKind, `{
		"algorithms": ["HS256", "none", "RS512"], "clock_skew": "1h", "subject_claim": "",
		"claims_to_headers": {"email": "X Email"}, "required_claims": ["exp", ""],
		"cookie": "a;b", "anonymous": "guest"}`, env,
		[]string{
			"cookie: must be a cookie name",
			`algorithms[1]: must be "HS256", "RS256" or "ES256"`,
			`algorithms[2]: must be "HS256", "RS256" or "ES256"`,
			"subject_claim: must not be empty",
			"clock_skew: must be between 0s and 10m0s",
			"claims_to_headers.email: must be an HTTP header name",
			"required_claims[1]: must not be empty",
			"anonymous: unknown field",
		})
	checkErrors(t, jwtAuthKind, `{"algorithms": [], "claims_to_headers": ["email"]}`, env, []string{
		"algorithms: must list at least one algorithm",
		"claims_to_headers: must be a mapping of strings, got a list",
	})
}

// A consumer's PEM key that does not parse fails the policy, naming the
// consumer and never the secret.
func TestJWTAuthBadKey(t *testing.T) {
	_, ek := testKeys()
	der, err := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tt := range []struct{ secret, want string }{
		{"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
			`consumer "mallory": jwt credential of subject "m": secret is not a usable public key: malformed PEM`},
		{string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			`consumer "mallory": jwt credential of subject "m": secret is not a usable public key: PEM block "PRIVATE KEY" is not a public key or certificate`},
		{publicPEM(t, &p384.PublicKey),
			`consumer "mallory": jwt credential of subject "m": secret is not a usable public key: EC curve P-384 is not P-256`},
	} {
		cs := jwtConsumers(t)
		cs.AddJWT(cs.Add("mallory"), "m", tt.secret)
		checkErrors(t, jwtAuthKind, `{}`, policytest.Env(cs), []string{tt.want})
	}
}

func BenchmarkJWTAuthHS256(b *testing.B) {
	p := policytest.Build(b, jwtAuthKind, `{"claims_to_headers": {"email": "X-User-Email"}}`,
		policytest.Env(jwtConsumers(b)))
	tok := sign(b, "HS256", hmacSecret, map[string]any{
		"sub": "alice", "email": "alice@example.com",
		"exp": float64(time.Now().Add(time.Hour).Unix()), "iat": float64(time.Now().Unix()),
	})
	req := &benchRequest{headers: [][2][]byte{{[]byte("Authorization"), []byte("Bearer " + tok)}}}
	benchAdmit(b, p, req)
}
