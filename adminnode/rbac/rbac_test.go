package rbac

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

var (
	dev  = store.Group{Name: "dev", Labels: map[string]string{"env": "dev", "team": "payments"}}
	prod = store.Group{Name: "prod", Labels: map[string]string{"env": "prod", "team": "payments"}}
)

func bind(role string, s store.Scope) []store.RoleBinding {
	return []store.RoleBinding{{ID: "b1", User: "alice", Role: role, Scope: s}}
}

// checked are the permissions the role table is tested with, in the order
// of the marks in builtInCases.
var checked = []string{
	GroupRead, GroupWrite, DraftWrite, DeploymentCreate,
	InstanceRead, InstanceOperate, MetricsRead,
	HostRead, UserRead, UserAdmin, AuditRead, TokenSelf,
}

// builtInCases give, for each permission of checked, three marks: allowed
// on dev (in scope), on prod (out of scope unless domain-bound) and at the
// domain level (g nil).
var builtInCases = []struct {
	role  string
	scope store.Scope
	want  string
}{
	{RoleDomainAdmin, store.Scope{Groups: []string{"dev"}}, "ynn ynn ynn ynn ynn ynn ynn nnn nnn nnn nnn yyy"},
	{RoleDeployer, store.Scope{Groups: []string{"dev"}}, "ynn ynn ynn ynn ynn nnn ynn nnn nnn nnn nnn yyy"},
	{RoleOperator, store.Scope{Groups: []string{"dev"}}, "ynn nnn nnn nnn ynn ynn ynn nnn nnn nnn nnn yyy"},
	{RoleDeveloper, store.Scope{Groups: []string{"dev"}}, "ynn nnn ynn nnn ynn nnn ynn nnn nnn nnn nnn yyy"},
	{RoleViewer, store.Scope{Groups: []string{"dev"}}, "ynn nnn nnn nnn ynn nnn ynn nnn nnn nnn nnn yyy"},

	{RoleDomainAdmin, store.Scope{Domain: true}, "yyy yyy yyy yyy yyy yyy yyy yyy yyy yyy yyy yyy"},
	{RoleDeployer, store.Scope{Domain: true}, "yyy yyy yyy yyy yyy nnn yyy nnn nnn nnn nnn yyy"},
	{RoleOperator, store.Scope{Domain: true}, "yyy nnn nnn nnn yyy yyy yyy yyy nnn nnn nnn yyy"},
	{RoleDeveloper, store.Scope{Domain: true}, "yyy nnn yyy nnn yyy nnn yyy nnn nnn nnn nnn yyy"},
	{RoleViewer, store.Scope{Domain: true}, "yyy nnn nnn nnn yyy nnn yyy yyy nnn nnn nnn yyy"},

	// A selector scope behaves like naming the matching groups.
	{RoleOperator, store.Scope{Selector: map[string]string{"env": "dev"}}, "ynn nnn nnn nnn ynn ynn ynn nnn nnn nnn nnn yyy"},
}

func TestBuiltInRoles(t *testing.T) {
	for _, tc := range builtInCases {
		a := New(BuiltInRoles(), bind(tc.role, tc.scope))
		marks := strings.Fields(tc.want)
		if len(marks) != len(checked) {
			t.Fatalf("%s: %d marks for %d permissions", tc.role, len(marks), len(checked))
		}
		for i, perm := range checked {
			for j, g := range []*store.Group{&dev, &prod, nil} {
				where := "domain level"
				if g != nil {
					where = g.Name
				}
				want := marks[i][j] == 'y'
				if got := a.Allowed(perm, g); got != want {
					t.Errorf("%s on %+v: Allowed(%s, %s) = %v, want %v", tc.role, tc.scope, perm, where, got, want)
				}
			}
		}
	}
}

func TestBuiltInRoleDefinitions(t *testing.T) {
	roles := BuiltInRoles()
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
		if !r.BuiltIn || r.Description == "" {
			t.Errorf("%s: BuiltIn %v, description %q", r.Name, r.BuiltIn, r.Description)
		}
		for _, p := range r.Permissions {
			if !ValidPermission(p) {
				t.Errorf("%s: invalid permission %q", r.Name, p)
			}
		}
	}
	if want := []string{RoleDomainAdmin, RoleDeployer, RoleOperator, RoleDeveloper, RoleViewer}; !slices.Equal(names, want) {
		t.Errorf("roles %v, want %v", names, want)
	}

	// The viewer reads everything except users and the audit log.
	var reads []string
	for _, p := range All {
		if strings.HasSuffix(p, ":read") && p != UserRead && p != AuditRead {
			reads = append(reads, p)
		}
	}
	viewer := New(roles, bind(RoleViewer, store.Scope{Domain: true})).Permissions(nil)
	want := append(reads, TokenSelf)
	slices.Sort(want)
	if !slices.Equal(viewer, want) {
		t.Errorf("viewer: %v, want %v", viewer, want)
	}

	// Callers may change what they get without changing the next call.
	roles[0].Permissions[0] = HostRead
	if got := BuiltInRoles()[0].Permissions; !slices.Equal(got, []string{Any}) {
		t.Errorf("domain-admin changed to %v", got)
	}
}

func TestPermissions(t *testing.T) {
	if !slices.IsSorted(All) || len(slices.Compact(slices.Clone(All))) != len(All) {
		t.Errorf("All is not sorted and unique: %v", All)
	}
	for _, tc := range []struct {
		perm         string
		valid, group bool
	}{
		{GroupRead, true, true},
		{DraftWrite, true, true},
		{DeploymentCreate, true, true},
		{InstanceOperate, true, true},
		{MetricsRead, true, true},
		{HostWrite, true, false},
		{EnvironmentWrite, true, false},
		{SecretWrite, true, false},
		{TrustWrite, true, false},
		{"secret:*", true, false},
		{"secret:read", false, false},
		{UserAdmin, true, false},
		{AuditRead, true, false},
		{TokenSelf, true, false},
		{"*", true, false},
		{"instance:*", true, true},
		{"user:*", true, false},
		{"token:*", true, false},
		{"group:delete", false, false},
		{"widget:*", false, false},
		{"*:read", false, false},
		{"group", false, false},
		{"", false, false},
	} {
		if got := ValidPermission(tc.perm); got != tc.valid {
			t.Errorf("ValidPermission(%q) = %v, want %v", tc.perm, got, tc.valid)
		}
		if got := GroupScoped(tc.perm); got != tc.group {
			t.Errorf("GroupScoped(%q) = %v, want %v", tc.perm, got, tc.group)
		}
	}
}

func TestWildcards(t *testing.T) {
	roles := []store.Role{
		{Name: "instances", Permissions: []string{"instance:*"}},
		{Name: "users", Permissions: []string{"user:*"}},
		{Name: "bogus", Permissions: []string{"*:read", "group:delete", "widget:*", "group:"}},
	}
	for _, tc := range []struct {
		role  string
		scope store.Scope
		g     *store.Group
		want  []string
	}{
		{"instances", store.Scope{Groups: []string{"dev"}}, &dev, []string{InstanceOperate, InstanceRead, InstanceWrite}},
		{"instances", store.Scope{Groups: []string{"dev"}}, &prod, []string{}},
		{"users", store.Scope{Domain: true}, nil, []string{UserAdmin, UserRead}},
		// user:* is domain-only even when it came from a wildcard.
		{"users", store.Scope{Groups: []string{"dev"}}, &dev, []string{}},
		{"bogus", store.Scope{Domain: true}, nil, []string{}},
	} {
		got := New(roles, bind(tc.role, tc.scope)).Permissions(tc.g)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s on %+v: %v, want %v", tc.role, tc.scope, got, tc.want)
		}
	}

	// Wildcards grant listed permissions only, and are not themselves
	// something a handler may ask about.
	a := New(BuiltInRoles(), bind(RoleDomainAdmin, store.Scope{Domain: true}))
	for _, perm := range []string{"*", "group:*", "group:delete", ""} {
		if a.Allowed(perm, nil) || a.Allowed(perm, &dev) {
			t.Errorf("domain-admin allowed %q", perm)
		}
	}
}

func TestScopeMatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scope store.Scope
		g     store.Group
		want  bool
	}{
		{"domain", store.Scope{Domain: true}, prod, true},
		{"named", store.Scope{Groups: []string{"prod", "dev"}}, dev, true},
		{"not named", store.Scope{Groups: []string{"prod"}}, dev, false},
		{"one pair", store.Scope{Selector: map[string]string{"env": "dev"}}, dev, true},
		{"all pairs match", store.Scope{Selector: map[string]string{"env": "dev", "team": "payments"}}, dev, true},
		{"one pair differs", store.Scope{Selector: map[string]string{"env": "dev", "team": "payments"}}, prod, false},
		{"missing label", store.Scope{Selector: map[string]string{"env": "dev", "tier": "1"}}, dev, false},
		{"no labels", store.Scope{Selector: map[string]string{"env": "dev"}}, store.Group{Name: "bare"}, false},
		{"empty value needs the label", store.Scope{Selector: map[string]string{"tier": ""}}, dev, false},
		{"empty scope", store.Scope{}, dev, false},
		{"empty selector", store.Scope{Selector: map[string]string{}}, dev, false},
		{"two kinds", store.Scope{Domain: true, Groups: []string{"prod"}}, dev, false},
	} {
		if got := ScopeMatches(tc.scope, tc.g); got != tc.want {
			t.Errorf("%s: ScopeMatches(%+v, %s) = %v, want %v", tc.name, tc.scope, tc.g.Name, got, tc.want)
		}
	}
}

func TestParseSelector(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]string
		errPart string
	}{
		{"env=prod", map[string]string{"env": "prod"}, ""},
		{"env=prod,team=payments", map[string]string{"env": "prod", "team": "payments"}, ""},
		{" env = prod , team=payments ", map[string]string{"env": "prod", "team": "payments"}, ""},
		{"", nil, "empty selector"},
		{"  ", nil, "empty selector"},
		{"env=prod,team", nil, `"team" is not key=value`},
		{"env=prod,", nil, `"env=prod," has an empty pair`},
		{"env=prod,,team=a", nil, "has an empty pair"},
		{"=prod", nil, `"=prod" has an empty key`},
		{"env=", nil, `"env=" has an empty value`},
		{"env=prod,env=dev", nil, `"env=dev" repeats key "env"`},
	} {
		got, err := ParseSelector(tc.in)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) || !errors.Is(err, store.ErrInvalid) {
				t.Errorf("ParseSelector(%q) error %v, want one containing %q wrapping ErrInvalid", tc.in, err, tc.errPart)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("ParseSelector(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("ParseSelector(%q)[%q] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		name     string
		domain   bool
		groups   []string
		selector string
		want     store.Scope
		errPart  string
	}{
		{"domain", true, nil, "", store.Scope{Domain: true}, ""},
		{"groups", false, []string{"dev", "prod"}, "", store.Scope{Groups: []string{"dev", "prod"}}, ""},
		{"selector", false, nil, "env=dev", store.Scope{Selector: map[string]string{"env": "dev"}}, ""},
		{"none", false, nil, "", store.Scope{}, "exactly one"},
		{"domain and groups", true, []string{"dev"}, "", store.Scope{}, "exactly one"},
		{"groups and selector", false, []string{"dev"}, "env=dev", store.Scope{}, "exactly one"},
		{"all three", true, []string{"dev"}, "env=dev", store.Scope{}, "exactly one"},
		{"empty group name", false, []string{"dev", ""}, "", store.Scope{}, "empty group name"},
		{"bad selector", false, nil, "env", store.Scope{}, `"env" is not key=value`},
	} {
		got, err := ParseScope(tc.domain, tc.groups, tc.selector)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) || !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: error %v, want one containing %q wrapping ErrInvalid", tc.name, err, tc.errPart)
			}
			continue
		}
		if err != nil || got.Domain != tc.want.Domain || !slices.Equal(got.Groups, tc.want.Groups) ||
			len(got.Selector) != len(tc.want.Selector) || !got.Valid() {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
		for k, v := range tc.want.Selector {
			if got.Selector[k] != v {
				t.Errorf("%s: selector[%q] = %q, want %q", tc.name, k, got.Selector[k], v)
			}
		}
	}
}

func TestFilterGroups(t *testing.T) {
	staging := store.Group{Name: "staging", Labels: map[string]string{"env": "dev", "team": "search"}}
	groups := []store.Group{dev, prod, staging}
	names := func(gs []store.Group) []string {
		out := []string{}
		for _, g := range gs {
			out = append(out, g.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		bindings []store.RoleBinding
		perm     string
		want     []string
	}{
		{"domain", bind(RoleViewer, store.Scope{Domain: true}), GroupRead, []string{"dev", "prod", "staging"}},
		{"named", bind(RoleViewer, store.Scope{Groups: []string{"staging", "prod"}}), GroupRead, []string{"prod", "staging"}},
		{"selector", bind(RoleViewer, store.Scope{Selector: map[string]string{"env": "dev"}}), GroupRead, []string{"dev", "staging"}},
		{"permission not held", bind(RoleViewer, store.Scope{Domain: true}), GroupWrite, []string{}},
		{"domain-only permission", bind(RoleViewer, store.Scope{Domain: true}), HostRead, []string{"dev", "prod", "staging"}},
		{"no bindings", nil, GroupRead, []string{}},
		{
			"union of bindings",
			[]store.RoleBinding{
				{Role: RoleDeveloper, Scope: store.Scope{Groups: []string{"dev"}}},
				{Role: RoleDeployer, Scope: store.Scope{Selector: map[string]string{"team": "search"}}},
			},
			DraftWrite, []string{"dev", "staging"},
		},
	} {
		got := New(BuiltInRoles(), tc.bindings).FilterGroups(tc.perm, groups)
		if !slices.Equal(names(got), tc.want) || got == nil {
			t.Errorf("%s: FilterGroups(%s) = %v, want %v", tc.name, tc.perm, names(got), tc.want)
		}
	}
}

func TestUnknownRoleIgnored(t *testing.T) {
	a := New(BuiltInRoles(), []store.RoleBinding{
		{Role: "deleted-role", Scope: store.Scope{Domain: true}},
		{Role: RoleViewer, Scope: store.Scope{Groups: []string{"dev"}}},
	})
	if got, want := a.Permissions(&dev), []string{DeploymentRead, DraftRead, GroupRead, InstanceRead, MetricsRead, TokenSelf}; !slices.Equal(got, want) {
		t.Errorf("Permissions(dev) = %v, want %v", got, want)
	}
	if got := a.Permissions(nil); !slices.Equal(got, []string{TokenSelf}) {
		t.Errorf("Permissions(nil) = %v, want only token:self", got)
	}
	if got := New(nil, bind(RoleDomainAdmin, store.Scope{Domain: true})).Permissions(nil); len(got) != 0 || got == nil {
		t.Errorf("without roles: %v, want an empty list", got)
	}
}

func TestInvalidBindingScopeIgnored(t *testing.T) {
	for _, s := range []store.Scope{{}, {Domain: true, Groups: []string{"dev"}}, {Selector: map[string]string{}}} {
		if got := New(BuiltInRoles(), bind(RoleViewer, s)).Permissions(&dev); len(got) != 0 {
			t.Errorf("scope %+v grants %v", s, got)
		}
	}
}

func TestNewCopiesItsArguments(t *testing.T) {
	roles := BuiltInRoles()
	bindings := bind(RoleViewer, store.Scope{Groups: []string{"dev"}})
	a := New(roles, bindings)
	roles[4].Permissions[0] = GroupWrite
	bindings[0].Scope.Groups[0] = "prod"
	if !a.Allowed(GroupRead, &dev) || a.Allowed(GroupWrite, &dev) || a.Allowed(GroupRead, &prod) {
		t.Error("changing New's arguments changed the Authorizer")
	}
}

// The API shares one Authorizer between a user's concurrent requests.
func TestConcurrentUse(t *testing.T) {
	a := New(BuiltInRoles(), bind(RoleOperator, store.Scope{Selector: map[string]string{"env": "dev"}}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if !a.Allowed(InstanceOperate, &dev) || len(a.FilterGroups(GroupRead, []store.Group{dev, prod})) != 1 {
					t.Error("inconsistent answer")
					return
				}
				a.Permissions(nil)
			}
		})
	}
	wg.Wait()
}

func TestMayCreateGroup(t *testing.T) {
	existing := []string{"shop", "pay"}
	for _, tt := range []struct {
		name     string
		bindings []store.RoleBinding
		want     bool
	}{
		{"domain", []store.RoleBinding{{Role: RoleDeployer, Scope: store.Scope{Domain: true}}}, true},
		{"selector", []store.RoleBinding{{Role: RoleDeployer, Scope: store.Scope{Selector: map[string]string{"env": "dev"}}}}, true},
		{"existing names only", []store.RoleBinding{{Role: RoleDeployer, Scope: store.Scope{Groups: []string{"shop", "pay"}}}}, false},
		{"a name not yet a group", []store.RoleBinding{{Role: RoleDeployer, Scope: store.Scope{Groups: []string{"shop", "new"}}}}, true},
		{"no group:write", []store.RoleBinding{{Role: RoleOperator, Scope: store.Scope{Domain: true}}}, false},
		{"invalid scope", []store.RoleBinding{{Role: RoleDeployer, Scope: store.Scope{}}}, false},
		{"none", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(BuiltInRoles(), tt.bindings).MayCreateGroup(GroupWrite, existing); got != tt.want {
				t.Errorf("MayCreateGroup = %v, want %v", got, tt.want)
			}
		})
	}
}
