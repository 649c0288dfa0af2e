package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"gopkg.in/yaml.v3"
)

func TestTables(t *testing.T) {
	a := newApp(testEnv(nil, ""))
	created := time.Date(2026, 11, 20, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name  string
		print func(b *bytes.Buffer)
		want  string
	}{
		{
			name: "groups",
			print: func(b *bytes.Buffer) {
				a.groupTable(b, []apitypes.Group{
					{Name: "web", Labels: map[string]string{"team": "a", "env": "prod"}, Description: "public\tAPI", UpdatedAt: created},
					{Name: "internal"},
				})
			},
			want: `
NAME      LABELS           DESCRIPTION  UPDATED
web       env=prod,team=a  public API   2026-11-20T08:30:00Z
internal  -                -            -
`,
		},
		{
			name: "status",
			print: func(b *bytes.Buffer) {
				a.overview(b, apitypes.Overview{Domain: "acme", Time: created,
					Groups: []apitypes.OverviewGroup{{Name: "web", CurrentDeployment: 3, Instances: 3, Rollout: "1/3",
						ByStatus: map[string]int{"Healthy": 1, "Only Heartbeat": 1, "Lost Connection": 1, "Offline": 0, "Pending": 0}}},
					Hosts: []apitypes.OverviewHost{{Name: "h1", Address: "10.0.0.1", Instances: 3, LastContact: created, Version: "1.4.0"},
						{Name: "h2"}},
					Attention: []apitypes.Attention{
						{Kind: "lost_connection", Group: "web", Instance: "web-2", Host: "h1", Reason: "no heartbeat for 1m0s"},
						{Kind: "only_heartbeat", Group: "web", Instance: "web-3", Host: "h1", Reason: `plugin "sig" not found`},
						{Kind: "spool_drops", Host: "h2", Reason: "traffic batches missing"},
					}})
			},
			want: `
Domain acme at 2026-11-20T08:30:00Z

GROUP  DEPLOYMENT  ROLLOUT  HEALTHY  ONLY-HEARTBEAT  LOST  OFFLINE  PENDING
web    #3          1/3      1        1               1     0        0

HOST  ADDRESS   INSTANCES  LAST-CONTACT          VERSION  CERT-EXPIRES
h1    10.0.0.1  3          2026-11-20T08:30:00Z  1.4.0    -
h2    -         0          -                     -        -

Needs attention (3):
KIND             GROUP  INSTANCE  HOST  REASON
lost_connection  web    web-2     h1    no heartbeat for 1m0s
only_heartbeat   web    web-3     h1    plugin "sig" not found
spool_drops      -      -         h2    traffic batches missing
`,
		},
		{
			name: "status with a mix of gateway versions and a partial deployment",
			print: func(b *bytes.Buffer) {
				a.overview(b, apitypes.Overview{Domain: "acme", Time: created,
					Groups: []apitypes.OverviewGroup{{Name: "web", CurrentDeployment: 4, Instances: 2, Rollout: "1/2",
						ByStatus: map[string]int{"Healthy": 1, "Only Heartbeat": 1},
						Versions: []apitypes.VersionCount{{Version: "1.5.0", FeatureLevel: 2, Instances: []string{"web-1"}}, {Version: "1.4.0", FeatureLevel: 1, Instances: []string{"web-2"}}},
						Skipped:  []apitypes.SkippedInstance{{Instance: "web-2", Host: "h1", Reason: "needs configuration feature level 2; the gateway has level 1"}}}},
					Hosts: []apitypes.OverviewHost{{Name: "h1", Instances: 2, Version: "1.5.0", GatewayBinary: "1.5.0",
						Gateways: []apitypes.VersionCount{{Version: "1.5.0", FeatureLevel: 2, Instances: []string{"web-1"}}, {Instances: []string{"web-2"}}}}},
				})
			},
			want: `
Domain acme at 2026-11-20T08:30:00Z

GROUP  DEPLOYMENT  ROLLOUT  HEALTHY  ONLY-HEARTBEAT  LOST  OFFLINE  PENDING
web    #4          1/2      1        1               0     0        0

HOST  ADDRESS  INSTANCES  LAST-CONTACT  VERSION  CERT-EXPIRES
h1    -        2          -             1.5.0    -

Gateway versions:
WHERE      VERSION         FEATURE-LEVEL  INSTANCES
group web  1.5.0           2              web-1
group web  1.4.0           1              web-2
host h1    1.5.0           2              web-1
host h1    (not reported)  -              web-2
host h1    1.5.0           -              (binary on disk)

Group web: deployment #4 is partial, 1 instance(s) skipped:
  web-2 (host h1): needs configuration feature level 2; the gateway has level 1

Nothing needs attention.
`,
		},
		{
			name: "settings of an instance",
			print: func(b *bytes.Buffer) {
				until := created.Add(10 * time.Minute)
				a.printInstanceSettings(b, apitypes.InstanceSettings{Instance: "web-1", Group: "web",
					OfGroup:   apitypes.GatewaySettings{LogLevel: "debug", AccessLog: &apitypes.AccessLogSetting{Enabled: true, SamplePercent: 10}},
					Own:       apitypes.GatewaySettings{AccessLog: &apitypes.AccessLogSetting{}, Trace: &apitypes.TraceSetting{Route: "api/orders", Until: until}},
					Effective: apitypes.AgentGatewaySettings{LogLevel: "debug", TraceRoute: "api/orders", TraceUntil: until},
					Applied:   &apitypes.AgentGatewaySettings{LogLevel: "debug", AccessLogPercent: 10}})
			},
			want: `
Settings of instance web-1 (group web):
SETTING     GROUP    INSTANCE                               EFFECTIVE                              GATEWAY-RUNS
log level   debug    -                                      debug                                  debug
access log  on, 10%  off                                    off                                    on, 10%
trace       -        api/orders until 2026-11-20T08:40:00Z  api/orders until 2026-11-20T08:40:00Z  -
`,
		},
		{
			name: "status of a domain on PostgreSQL with two admin nodes",
			print: func(b *bytes.Buffer) {
				a.overview(b, apitypes.Overview{Domain: "acme", Time: created, HostsHidden: true,
					AdminNodes: []string{"admin-a", "admin-b"}, LeaseHolder: "admin-b",
					Database: apitypes.OverviewDatabase{Kind: "postgres", Reachable: true}})
			},
			want: `
Domain acme at 2026-11-20T08:30:00Z

Database postgres: reachable
ADMIN-NODE  BACKGROUND-LEASE
admin-a     -
admin-b     holder

No group.

Hosts are not shown: that needs host:read.

Nothing needs attention.
`,
		},
		{
			name: "status while no admin node holds the lease",
			print: func(b *bytes.Buffer) {
				a.overview(b, apitypes.Overview{Domain: "acme", Time: created, HostsHidden: true,
					AdminNodes: []string{"admin-a"}, Database: apitypes.OverviewDatabase{Kind: "postgres", Reachable: true}})
			},
			want: `
Domain acme at 2026-11-20T08:30:00Z

Database postgres: reachable
ADMIN-NODE  BACKGROUND-LEASE
admin-a     -
No admin node holds the background lease: instance status removal and traffic roll-up wait until one takes it.

No group.

Hosts are not shown: that needs host:read.

Nothing needs attention.
`,
		},
		{
			name: "status of a viewer, all well",
			print: func(b *bytes.Buffer) {
				a.overview(b, apitypes.Overview{Domain: "acme", Time: created, HostsHidden: true})
			},
			want: `
Domain acme at 2026-11-20T08:30:00Z

No group.

Hosts are not shown: that needs host:read.

Nothing needs attention.
`,
		},
		{
			name: "deployments",
			print: func(b *bytes.Buffer) {
				a.deploymentTable(b, []apitypes.Deployment{
					{Number: 3, CreatedAt: created, Author: "alice", Checksum: "sha256:0123456789abcdef0123", RollbackOf: 1, Message: "undo 2"},
					{Number: 2, CreatedAt: created, Author: "bob", Checksum: "sha256:fedcba9876543210fedc", Message: "add orders"},
				})
			},
			want: `
NUMBER  CREATED               AUTHOR  CHECKSUM      ROLLBACK OF  MESSAGE
3       2026-11-20T08:30:00Z  alice   0123456789ab  1            undo 2
2       2026-11-20T08:30:00Z  bob     fedcba987654  -            add orders
`,
		},
		{
			name: "diff",
			print: func(b *bytes.Buffer) {
				diffTable(b, apitypes.Diff{From: "2", To: "draft", Changes: []deploy.Change{
					{Kind: deploy.KindUpstream, Name: "orders", Op: deploy.OpAdded},
					{Kind: deploy.KindRoute, Name: "api/list", Op: deploy.OpChanged, Fields: []deploy.FieldChange{
						{Path: "methods[0]", From: "GET", To: "POST"},
						{Path: "priority", To: 10},
					}},
					{Kind: deploy.KindConsumer, Name: "ci", Op: deploy.OpChanged, Fields: []deploy.FieldChange{
						{Path: "credentials[0].key", From: deploy.Redacted, To: deploy.Redacted},
					}},
				}})
			},
			want: `
KIND      NAME      OP       FIELD               FROM        TO
upstream  orders    added    -                   -           -
route     api/list  changed  methods[0]          "GET"       "POST"
route     api/list  changed  priority            -           10
consumer  ci        changed  credentials[0].key  (redacted)  (redacted)
`,
		},
		{
			name:  "no differences",
			print: func(b *bytes.Buffer) { diffTable(b, apitypes.Diff{From: "3", To: "draft"}) },
			want:  "\nNo changes from 3 to draft.\n",
		},
		{
			name: "instances",
			print: func(b *bytes.Buffer) {
				a.instanceTable(b, []apitypes.Instance{
					{Name: "web-1", Group: "web", Host: "node-1", Status: "Healthy",
						Observed: &apitypes.InstanceState{LastHeartbeat: created, AppliedDeployment: 3}},
					{Name: "web-2", Group: "web", Host: "node-2", Status: "Pending"},
				})
			},
			want: `
NAME   GROUP  HOST    STATUS   DEPLOYMENT  LAST HEARTBEAT
web-1  web    node-1  Healthy  3           2026-11-20T08:30:00Z
web-2  web    node-2  Pending  -           -
`,
		},
		{
			name: "summary",
			print: func(b *bytes.Buffer) {
				summary(b, apitypes.GroupSummary{Group: "web", CurrentDeployment: 3, CurrentChecksum: "sha256:ab",
					Instances: 3, ByStatus: map[string]int{"Healthy": 2, "Pending": 1}, UpToDate: 2, Rollout: "2/3",
					Deployments: map[string][]string{"3": {"web-1", "web-2"}, "0": {"web-3"}, "12": nil}})
			},
			want: `
Group:       web
Deployment:  3
Checksum:    sha256:ab
Instances:   3
By status:   Healthy 2, Pending 1
Rollout:     2/3
Complete:    false

DEPLOYMENT  INSTANCES
#12         -
#3          web-1,web-2
none        web-3
`,
		},
		{
			name: "status with certificates",
			print: func(b *bytes.Buffer) {
				a.overview(b, apitypes.Overview{Domain: "acme", Time: created, HostsHidden: true,
					Certificates: []apitypes.CertificateExpiry{
						{Kind: "ca", Name: "SHA256:ab", Subject: "Gatehouse acme CA", NotAfter: created, LifeLeft: 0.9, State: "ok", Role: "issuer,server"},
						{Kind: "node", Name: "h1", Host: "h1", Subject: "h1", NotAfter: created, LifeLeft: 0.6, State: "ok"},
						{Kind: "listener", Name: "site", Group: "web", Subject: "shop.example.com", NotAfter: created, LifeLeft: 0.08, State: "warning"},
					}})
			},
			want: `
Domain acme at 2026-11-20T08:30:00Z

No group.

Hosts are not shown: that needs host:read.

Certificates: 2 ok, 1 warning, 0 expired
KIND      NAME  GROUP  SUBJECT           EXPIRES               LIFE-LEFT  STATE    ROLE
listener  site  web    shop.example.com  2026-11-20T08:30:00Z  8%         warning  -

Nothing needs attention.
`,
		},
		{
			name: "ca show during a rotation",
			print: func(b *bytes.Buffer) {
				a.caStatus(b, apitypes.CAStatus{Rotating: true, Fingerprint: "SHA256:old", Issuer: "SHA256:new", Pending: []string{"h2", "h3"},
					Roots: []apitypes.CertificateExpiry{
						{Kind: "ca", Name: "SHA256:new", Subject: "Gatehouse acme CA", NotAfter: created, LifeLeft: 1, State: "ok", Role: "issuer"},
						{Kind: "ca", Name: "SHA256:old", Subject: "Gatehouse acme CA", NotAfter: created, LifeLeft: 0.1, State: "warning", Role: "server"},
					}})
			},
			want: `
KIND  NAME        GROUP  SUBJECT            EXPIRES               LIFE-LEFT  STATE    ROLE
ca    SHA256:new  -      Gatehouse acme CA  2026-11-20T08:30:00Z  100%       ok       issuer
ca    SHA256:old  -      Gatehouse acme CA  2026-11-20T08:30:00Z  10%        warning  server

Presented to clients: SHA256:old
Rotation under way: 2 hosts not yet renewed from the new root: h2, h3
`,
		},
		{
			name: "summary with gossip",
			print: func(b *bytes.Buffer) {
				summary(b, apitypes.GroupSummary{Group: "web", CurrentDeployment: 3, Instances: 3,
					ByStatus: map[string]int{"Healthy": 3}, UpToDate: 1, Rollout: "1/3",
					Unreachable: []string{"web-2"},
					Drift:       []apitypes.Drift{{Instance: "web-2", Deployment: 2}, {Instance: "web-3"}}})
			},
			want: `
Group:        web
Deployment:   3
Checksum:     -
Instances:    3
By status:    Healthy 3
Rollout:      1/3
Complete:     false
Unreachable:  web-2
Drift:        web-2 runs #2, web-3 runs none
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.print(&b)
			if got, want := b.String(), strings.TrimPrefix(tt.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	a := newApp(testEnv(nil, ""))
	a.output = outputJSON
	cmd := a.groupCommand()
	var b bytes.Buffer
	cmd.SetOut(&b)
	groups := []apitypes.Group{{Name: "web", Labels: map[string]string{"env": "prod"}, Version: 2}}
	if err := a.render(cmd, groups, func(w io.Writer) { t.Error("table printed with -o json") }); err != nil {
		t.Fatal(err)
	}
	want := `[
  {
    "name": "web",
    "labels": {
      "env": "prod"
    },
    "version": 2
  }
]
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// -o yaml prints the JSON's field names in the JSON's order, and values
// that read back as what the JSON holds: strings YAML would take for
// another type are quoted, large integers keep every digit.
func TestYAMLOutput(t *testing.T) {
	a := newApp(testEnv(nil, ""))
	a.output = outputYAML
	cmd := a.groupCommand()
	var b bytes.Buffer
	cmd.SetOut(&b)
	v := []any{
		apitypes.Group{Name: "web", Labels: map[string]string{"env": "prod"}, Version: 2},
		map[string]any{"tricky": []string{"true", "007", "null", "1e3", "a: b", "", "multi\nline"},
			"big": uint64(18446744073709551615), "ratio": 0.25, "none": nil, "empty": []int{}, "yes": true},
	}
	if err := a.render(cmd, v, func(w io.Writer) { t.Error("table printed with -o yaml") }); err != nil {
		t.Fatal(err)
	}
	want := `- name: web
  labels:
    env: prod
  version: 2
- big: 18446744073709551615
  empty: []
  none: null
  ratio: 0.25
  tricky:
    - "true"
    - "007"
    - "null"
    - "1e3"
    - 'a: b'
    - ""
    - |-
      multi
      line
  yes: true
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	// Read back, it is the JSON's value.
	var fromYAML any
	if err := yaml.Unmarshal(b.Bytes(), &fromYAML); err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(fromYAML)
	var fromJSON, back any
	j2, _ := json.Marshal(v)
	json.Unmarshal(j2, &fromJSON)
	json.Unmarshal(j1, &back)
	if !reflect.DeepEqual(back, fromJSON) {
		t.Errorf("YAML reads back as\n%s\nwant\n%s", j1, j2)
	}
}
