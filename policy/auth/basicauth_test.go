package auth

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/policy/policytest"
)

func basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

func TestBasicAuth(t *testing.T) {
	tests := []struct {
		name   string
		config string
		auth   string // Authorization; "" for none
		want   outcome
	}{
		{"allowed", `{}`, basic("bob:hunter2"), outcome{consumer: "bob", credential: "basic"}},
		{"colon in password", `{}`, basic("alice:s3cret:with colon"), outcome{consumer: "alice", credential: "basic"}},
		{"scheme any case", `{}`, "bAsIc  " + base64.StdEncoding.EncodeToString([]byte("bob:hunter2")),
			outcome{consumer: "bob", credential: "basic"}},
		{"missing", `{}`, "", outcome{message: "missing credentials"}},
		{"other scheme", `{}`, "Bearer abc", outcome{message: "missing credentials"}},
		{"wrong password", `{}`, basic("bob:hunter3"), outcome{message: "invalid credentials"}},
		{"password prefix", `{}`, basic("bob:hunter"), outcome{message: "invalid credentials"}},
		{"empty password", `{}`, basic("bob:"), outcome{message: "invalid credentials"}},
		{"unknown user", `{}`, basic("carol:hunter2"), outcome{message: "invalid credentials"}},
		{"no colon", `{}`, basic("bob"), outcome{message: "invalid credentials"}},
		{"bad base64", `{}`, "Basic !!!", outcome{message: "invalid credentials"}},
		{"too long", `{}`, basic("bob:" + strings.Repeat("x", 800)), outcome{message: "invalid credentials"}},
		{"anonymous", `{"anonymous": "guest"}`, "", outcome{consumer: "guest", credential: "anonymous"}},
		{"anonymous is not for wrong passwords", `{"anonymous": "guest"}`, basic("bob:x"),
			outcome{message: "invalid credentials"}},
	}
	env := policytest.Env(consumers())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policytest.Build(t, basicAuthKind, tt.config, env)
			req := policytest.Get("/")
			if tt.auth != "" {
				req.Headers = append(req.Headers, [2]string{"Authorization", tt.auth})
			}
			c, ok := policytest.Run(p, req)
			check(t, c, ok, tt.want, `Basic realm="gatehouse"`)
		})
	}
}

func TestBasicAuthRealm(t *testing.T) {
	p := policytest.Build(t, basicAuthKind, `{"realm": "orders API"}`, policytest.Env(consumers()))
	c, ok := policytest.Run(p, policytest.Get("/"))
	check(t, c, ok, outcome{message: "missing credentials"}, `Basic realm="orders API"`)
}

func TestBasicAuthHideCredentials(t *testing.T) {
	checkHideCredentials(t, basicAuthKind, policytest.Get("/", "Authorization", basic("bob:hunter2")), "Authorization")
}

func TestBasicAuthConfigErrors(t *testing.T) {
	checkErrors(t, basicAuthKind, `{"realm": "a\"b", "anonymous": 3, "header": "X"}`, policytest.Env(consumers()),
		[]string{
			`realm: must be printable ASCII without '"' or '\'`,
			"anonymous: must be a string, got an integer",
			"header: unknown field",
		})
}

func BenchmarkBasicAuth(b *testing.B) {
	p := policytest.Build(b, basicAuthKind, `{}`, policytest.Env(consumers()))
	req := &benchRequest{headers: [][2][]byte{{[]byte("Authorization"), []byte(basic("bob:hunter2"))}}}
	benchAdmit(b, p, req)
}
