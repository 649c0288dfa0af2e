package main

import (
	"context"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/policy/external/sdk"
)

func signed(secret, method, path, query, body string) string {
	return hex.EncodeToString(Sign([]byte(secret), method, path, query, []byte(body)))
}

func TestCheck(t *testing.T) {
	const secret = "test-secret"
	good := signed(secret, "GET", "/orders/7", "", "")
	verified := &sdk.Verdict{
		Action:               sdk.ActionModify,
		RemoveRequestHeaders: []string{"X-Signature"},
		SetRequestHeaders:    []sdk.Header{{Name: "X-Signature-Verified", Value: "true"}},
	}
	tests := []struct {
		name    string
		config  string
		req     sdk.Request
		want    *sdk.Verdict
		wantErr string
	}{
		{
			name:   "valid signature",
			config: `{"secret":"test-secret"}`,
			req:    sdk.Request{Method: "GET", Path: "/orders/7", Headers: []sdk.Header{{Name: "x-signature", Value: good}}},
			want:   verified,
		},
		{
			name:   "missing header",
			config: `{"secret":"test-secret"}`,
			req:    sdk.Request{Method: "GET", Path: "/orders/7"},
			want:   sdk.Reject(401, "missing X-Signature header"),
		},
		{
			name:   "wrong secret",
			config: `{"secret":"other-secret"}`,
			req:    sdk.Request{Method: "GET", Path: "/orders/7", Headers: []sdk.Header{{Name: "X-Signature", Value: good}}},
			want:   sdk.Reject(401, "invalid signature"),
		},
		{
			name:   "other method",
			config: `{"secret":"test-secret"}`,
			req:    sdk.Request{Method: "DELETE", Path: "/orders/7", Headers: []sdk.Header{{Name: "X-Signature", Value: good}}},
			want:   sdk.Reject(401, "invalid signature"),
		},
		{
			name:   "query is signed",
			config: `{"secret":"test-secret"}`,
			req:    sdk.Request{Method: "GET", Path: "/orders/7", Query: "all=1", Headers: []sdk.Header{{Name: "X-Signature", Value: good}}},
			want:   sdk.Reject(401, "invalid signature"),
		},
		{
			name:   "not hex",
			config: `{"secret":"test-secret"}`,
			req:    sdk.Request{Method: "GET", Path: "/orders/7", Headers: []sdk.Header{{Name: "X-Signature", Value: "zz"}}},
			want:   sdk.Reject(401, "X-Signature must be a hex HMAC-SHA256"),
		},
		{
			name:   "own header",
			config: `{"secret":"test-secret","header":"X-Hub-Signature"}`,
			req:    sdk.Request{Method: "GET", Path: "/orders/7", Headers: []sdk.Header{{Name: "X-Hub-Signature", Value: good}}},
			want: &sdk.Verdict{
				Action:               sdk.ActionModify,
				RemoveRequestHeaders: []string{"X-Hub-Signature"},
				SetRequestHeaders:    []sdk.Header{{Name: "X-Signature-Verified", Value: "true"}},
			},
		},
		{
			name:   "body signed",
			config: `{"secret":"test-secret","body":true}`,
			req: sdk.Request{Method: "POST", Path: "/orders", Body: []byte(`{"n":1}`), BodyIncluded: true,
				Headers: []sdk.Header{{Name: "X-Signature", Value: signed(secret, "POST", "/orders", "", `{"n":1}`)}}},
			want: verified,
		},
		{
			name:   "body altered",
			config: `{"secret":"test-secret","body":true}`,
			req: sdk.Request{Method: "POST", Path: "/orders", Body: []byte(`{"n":2}`), BodyIncluded: true,
				Headers: []sdk.Header{{Name: "X-Signature", Value: signed(secret, "POST", "/orders", "", `{"n":1}`)}}},
			want: sdk.Reject(401, "invalid signature"),
		},
		{
			name:    "body not sent",
			config:  `{"secret":"test-secret","body":true}`,
			req:     sdk.Request{Method: "POST", Path: "/orders", Headers: []sdk.Header{{Name: "X-Signature", Value: good}}},
			wantErr: "config body is true, but the policy does not send the body",
		},
		{
			name:    "no secret",
			config:  `{"header":"X-Sig"}`,
			req:     sdk.Request{Method: "GET", Path: "/"},
			wantErr: "policy config: secret is required",
		},
		{
			name:    "unknown field",
			config:  `{"secret":"x","secrte":"y"}`,
			req:     sdk.Request{Method: "GET", Path: "/"},
			wantErr: `policy config: json: unknown field "secrte"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Config = []byte(tt.config)
			got, err := sdk.Configured(check).Check(context.Background(), &tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("verdict %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSignMatchesOpenSSL(t *testing.T) {
	// A client in another language must reproduce the documented form:
	// printf 'POST\n/a?b=1\nhello' | openssl dgst -sha256 -hmac key
	const want = "afe2f7a203ccfd7d166683c610d8b44cfc6a14aa250c75eaefe02cf5730aa146"
	if got := signed("key", "POST", "/a", "b=1", "hello"); got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
}
