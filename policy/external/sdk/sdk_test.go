package sdk

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/policy/external/pluginpb"
)

func TestVerdictBuilders(t *testing.T) {
	tests := []struct {
		name string
		got  *Verdict
		want *Verdict
	}{
		{"continue", Continue(), &Verdict{}},
		{"edits make a modify", Continue().SetRequestHeader("A", "1").RemoveRequestHeader("B").SetResponseHeader("C", "3"),
			&Verdict{Action: ActionModify, SetRequestHeaders: []Header{{"A", "1"}}, RemoveRequestHeaders: []string{"B"},
				SetResponseHeaders: []Header{{"C", "3"}}}},
		{"reject keeps its action", Reject(401, "no").SetResponseHeader("WWW-Authenticate", "Basic"),
			&Verdict{Action: ActionReject, Status: 401, Message: "no", SetResponseHeaders: []Header{{"WWW-Authenticate", "Basic"}}}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
}

type teamConfig struct {
	Team string `json:"team"`
}

func (c *teamConfig) Validate() error {
	if c.Team == "" {
		return errors.New("team is required")
	}
	return nil
}

func TestConfigured(t *testing.T) {
	var seen []*teamConfig
	ch := Configured(func(_ context.Context, r *Request, cfg *teamConfig) (*Verdict, error) {
		seen = append(seen, cfg)
		if r.Header("x-team") != cfg.Team {
			return Reject(403, "wrong team"), nil
		}
		return Continue(), nil
	})
	call := func(config, team string) (*Verdict, error) {
		return ch.Check(context.Background(), &Request{Config: []byte(config), Headers: []Header{{"X-Team", team}}})
	}
	if v, err := call(`{"team":"blue"}`, "blue"); err != nil || v.Action != ActionContinue {
		t.Fatalf("%+v %v", v, err)
	}
	if v, err := call(`{"team":"blue"}`, "red"); err != nil || v.Action != ActionReject {
		t.Fatalf("%+v %v", v, err)
	}
	if len(seen) != 2 || seen[0] != seen[1] {
		t.Errorf("the configuration was decoded again for the same bytes")
	}
	for config, want := range map[string]string{
		`{}`:                 "policy config: team is required",
		`null`:               "policy config: team is required",
		`{"team":"b","x":1}`: `policy config: json: unknown field "x"`,
		`{"team":5}`:         "policy config: json: cannot unmarshal number",
	} {
		if _, err := call(config, "b"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %s: error %v, want %q", config, err, want)
		}
	}
}

func TestServer(t *testing.T) {
	s := &server{checker: CheckerFunc(func(_ context.Context, r *Request) (*Verdict, error) {
		switch r.Path {
		case "/panic":
			panic("boom")
		case "/nil":
			return nil, nil
		}
		if r.Method != "POST" || r.Header("X-A") != "1" || string(r.Body) != "b" || !r.BodyIncluded || string(r.Config) != "{}" {
			return nil, errors.New("request not converted")
		}
		return Continue().SetRequestHeader("X-B", "2").RemoveRequestHeader("X-A"), nil
	})}
	v, err := s.Check(context.Background(), &pluginpb.CheckRequest{
		Method: []byte("POST"), Path: []byte("/"), Headers: []*pluginpb.Header{{Name: []byte("x-a"), Value: []byte("1")}},
		Body: []byte("b"), BodyIncluded: true, Config: []byte("{}"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.Action != pluginpb.Action_MODIFY || len(v.SetRequestHeaders) != 1 || string(v.SetRequestHeaders[0].Value) != "2" ||
		len(v.RemoveRequestHeaders) != 1 || string(v.RemoveRequestHeaders[0]) != "X-A" {
		t.Errorf("verdict %v", v)
	}
	if v, err := s.Check(context.Background(), &pluginpb.CheckRequest{Path: []byte("/nil")}); err != nil || v.Action != pluginpb.Action_CONTINUE {
		t.Errorf("a nil verdict: %v %v", v, err)
	}
	_, err = s.Check(context.Background(), &pluginpb.CheckRequest{Path: []byte("/panic")})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "check panicked: boom") {
		t.Errorf("a panic: %v", err)
	}
}
