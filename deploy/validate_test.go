package deploy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/fieldpath"
)

// validConfig is a small valid configuration that the cases below break.
func validConfig() *Config {
	kp := keyPairA()
	return &Config{
		Upstreams: []Upstream{{
			Name:    "orders",
			Targets: []Target{{Address: "10.0.0.1:8080"}},
		}},
		Services: []Service{{
			Name:     "orders",
			Upstream: "orders",
			Routes: []Route{
				{Name: "list", Paths: []string{"/orders", "/v1/orders"}},
				{Name: "get", Paths: []string{"/orders/{id}"}},
			},
		}},
		Consumers: []Consumer{{
			Name:        "app",
			Credentials: []Credential{{Type: CredentialKey, Key: "key-one"}},
		}},
		Certificates: []Certificate{{
			Name: "example",
			SNIs: []string{"api.example.com"},
			Cert: kp.cert,
			Key:  kp.key,
		}},
		GlobalPolicies: []Policy{{Name: "request-id"}},
	}
}

func TestValidConfig(t *testing.T) {
	if err := validConfig().Validate(testKinds); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

// TestValidateWithoutKinds checks that a caller passing no policy kinds
// cannot let a policy through unchecked: every policy is unknown.
func TestValidateWithoutKinds(t *testing.T) {
	c := validConfig()
	c.Services[0].Policies = []Policy{{Name: "cors", Config: map[string]any{"origins": "bad"}}}
	want := []string{
		`services[0].policies[0].name: unknown policy "cors"`,
		`global_policies[0].name: unknown policy "request-id"`,
	}
	if got := errorLines(t, c.Validate(nil)); !slices.Equal(got, want) {
		t.Errorf("Validate(nil) errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c.Services[0].Policies, c.GlobalPolicies = nil, nil
	if err := c.Validate(nil); err != nil {
		t.Errorf("Validate(nil) of a configuration without policies = %v", err)
	}
}

func TestValidate(t *testing.T) {
	route := func(c *Config) *Route { return &c.Services[0].Routes[0] }
	upstream := func(c *Config) *Upstream { return &c.Upstreams[0] }
	secondService := func(c *Config, routes ...Route) {
		c.Services = append(c.Services, Service{Name: "other", Upstream: "orders", Routes: routes})
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		// Names.
		{"upstream name required", func(c *Config) { upstream(c).Name = "" }, []string{
			"upstreams[0].name: required",
			`services[0].upstream: no upstream is named "orders"`,
		}},
		{"name syntax", func(c *Config) { c.Services[0].Name = "-orders" }, []string{
			`services[0].name: must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
		}},
		{"name of 63 characters", func(c *Config) { c.Services[0].Name = strings.Repeat("a", 63) }, nil},
		{"name of 64 characters", func(c *Config) { c.Consumers[0].Name = strings.Repeat("a", 64) }, []string{
			`consumers[0].name: must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
		}},
		{"name with dot and underscore", func(c *Config) { c.Certificates[0].Name = "a.b_c-1" }, nil},
		{"duplicate upstream", func(c *Config) { c.Upstreams = append(c.Upstreams, c.Upstreams[0]) }, []string{
			`upstreams[1].name: "orders" is already the name of upstreams[0]`,
		}},
		{"duplicate service", func(c *Config) {
			c.Services = append(c.Services, Service{Name: "orders", Upstream: "orders", Routes: []Route{{Name: "x", Paths: []string{"/x"}}}})
		}, []string{`services[1].name: "orders" is already the name of services[0]`}},
		{"duplicate route in service", func(c *Config) { c.Services[0].Routes[1].Name = "list" }, []string{
			`services[0].routes[1].name: "list" is already the name of services[0].routes[0]`,
		}},
		{"duplicate route across services", func(c *Config) {
			secondService(c, Route{Name: "get", Paths: []string{"/other"}})
		}, []string{`services[1].routes[0].name: "get" is already the name of services[0].routes[1]`}},
		{"duplicate consumer", func(c *Config) {
			c.Consumers = append(c.Consumers, Consumer{Name: "app"})
		}, []string{`consumers[1].name: "app" is already the name of consumers[0]`}},
		{"duplicate certificate", func(c *Config) {
			kp := keyPairB()
			c.Certificates = append(c.Certificates, Certificate{Name: "example", SNIs: []string{"b.example.com"}, Cert: kp.cert, Key: kp.key})
		}, []string{`certificates[1].name: "example" is already the name of certificates[0]`}},

		// Services.
		{"service upstream required", func(c *Config) { c.Services[0].Upstream = "" }, []string{
			"services[0].upstream: required",
		}},
		{"service needs a route", func(c *Config) { c.Services[0].Routes = nil }, []string{
			"services[0].routes: at least one route is required",
		}},

		// Paths.
		{"route needs a path", func(c *Config) { route(c).Paths = nil }, []string{
			"services[0].routes[0].paths: at least one path is required",
		}},
		{"path must start with slash", func(c *Config) { route(c).Paths[1] = "v1/orders" }, []string{
			`services[0].routes[0].paths[1]: must start with "/"`,
		}},
		{"empty path", func(c *Config) { route(c).Paths[0] = "" }, []string{
			`services[0].routes[0].paths[0]: must start with "/"`,
		}},
		{"valid path forms", func(c *Config) {
			route(c).Paths = []string{"/", "/a/", "/a/{b}/c", "/x/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", "/files/*", "/v2/*", "/a-b.c~d:e@f"}
		}, nil},
		{"catch-all prefix", func(c *Config) { route(c).Paths = []string{"/*"} }, nil},
		{"path errors", func(c *Config) {
			route(c).Paths = []string{
				"/a//b", "//", "//*", "/a/*/b", "/a/b*", "/a/{1x}", "/a/{}", "/a/{id}/{id}",
				"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", "/a?x=1", "/a#top", "/a{id}", "/{id}.json",
			}
		}, []string{
			`services[0].routes[0].paths[0]: must not have empty segments ("//")`,
			`services[0].routes[0].paths[1]: must not have empty segments ("//")`,
			`services[0].routes[0].paths[2]: must not have empty segments ("//")`,
			`services[0].routes[0].paths[3]: "*" is only allowed as the whole last segment`,
			`services[0].routes[0].paths[4]: "*" is only allowed as the whole last segment`,
			`services[0].routes[0].paths[5]: parameter "1x": name must be a letter or "_" followed by letters, digits or "_"`,
			`services[0].routes[0].paths[6]: parameter "": name must be a letter or "_" followed by letters, digits or "_"`,
			`services[0].routes[0].paths[7]: duplicate parameter {id}`,
			`services[0].routes[0].paths[8]: must have at most 8 parameters`,
			`services[0].routes[0].paths[9]: must not contain "?" or "#"`,
			`services[0].routes[0].paths[10]: must not contain "?" or "#"`,
			`services[0].routes[0].paths[11]: a parameter must be a whole segment such as "{id}"`,
			`services[0].routes[0].paths[12]: a parameter must be a whole segment such as "{id}"`,
		}},
		{"duplicate path in route", func(c *Config) { route(c).Paths = []string{"/a/{x}", "/a/{y}"} }, []string{
			"services[0].routes[0].paths[1]: matches the same requests as paths[0]",
		}},

		// Hosts.
		{"valid hosts", func(c *Config) {
			route(c).Hosts = []string{"example.com", "*.example.com", "localhost", "a-1.b2.example", "10.0.0.1"}
		}, nil},
		{"invalid hosts", func(c *Config) {
			route(c).Hosts = []string{"API.example.com", "*", "a.*.example.com", "*.*.example.com", "example.com:8080", "-a.com", "a..b", "example.com.", "", "a_b.com", strings.Repeat("a", 64) + ".com"}
		}, func() []string {
			var want []string
			for i := range 11 {
				want = append(want, fieldpath.Index("services[0].routes[0].hosts", i)+": "+hostRule)
			}
			return want
		}()},

		// Methods and headers.
		{"methods", func(c *Config) {
			route(c).Methods = []string{"GET", "get", "FETCH", "POST", "GET"}
		}, []string{
			"services[0].routes[0].methods[1]: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE (upper case)",
			"services[0].routes[0].methods[2]: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE (upper case)",
			"services[0].routes[0].methods[4]: duplicate of methods[0]",
		}},
		{"all methods", func(c *Config) { route(c).Methods = slices.Clone(httpMethods) }, nil},
		{"headers", func(c *Config) {
			route(c).Headers = []HeaderMatch{{Name: "X-Ok", Values: []string{"a b"}}, {Name: ""}, {Name: "X Bad"}, {Name: "X:Bad"}}
		}, []string{
			"services[0].routes[0].headers[1].name: required",
			"services[0].routes[0].headers[2].name: must be an HTTP header name",
			"services[0].routes[0].headers[3].name: must be an HTTP header name",
		}},

		// Rewrite and strip_prefix.
		{"rewrite with parameter", func(c *Config) {
			c.Services[0].Routes[1].Paths = []string{"/orders/{id}", "/v1/orders/{id}/items/{item}"}
			c.Services[0].Routes[1].Rewrite = "/internal/{id}"
		}, nil},
		{"rewrite must start with slash", func(c *Config) { route(c).Rewrite = "internal" }, []string{
			`services[0].routes[0].rewrite: must start with "/"`,
		}},
		{"rewrite parameter missing from a path", func(c *Config) {
			c.Services[0].Routes[1].Paths = []string{"/orders/{id}", "/v1/orders/{oid}", "bad"}
			c.Services[0].Routes[1].Rewrite = "/internal/{id}"
		}, []string{
			`services[0].routes[1].paths[2]: must start with "/"`,
			"services[0].routes[1].rewrite: uses {id}, which paths[1] does not have",
		}},
		{"rewrite unclosed", func(c *Config) { route(c).Rewrite = "/x/{id" }, []string{
			`services[0].routes[0].rewrite: has "{" without "}"`,
		}},
		{"rewrite nested", func(c *Config) { route(c).Rewrite = "/x/{a{id}}" }, []string{
			`services[0].routes[0].rewrite: has "{" without "}"`,
		}},
		{"rewrite unopened", func(c *Config) { route(c).Rewrite = "/x/id}" }, []string{
			`services[0].routes[0].rewrite: has "}" without "{"`,
		}},
		{"rewrite bad name", func(c *Config) { route(c).Rewrite = "/x/{1}" }, []string{
			"services[0].routes[0].rewrite: {1} is not a parameter name",
		}},
		{"strip_prefix with prefix paths", func(c *Config) {
			route(c).Paths = []string{"/api/*", "/v1/*"}
			route(c).StripPrefix = true
		}, nil},
		{"strip_prefix with an exact path", func(c *Config) {
			route(c).Paths = []string{"/api/*", "/v1"}
			route(c).StripPrefix = true
		}, []string{`services[0].routes[0].strip_prefix: only allowed when every path ends with "/*"`}},

		// Conflicts.
		{"conflict across services", func(c *Config) {
			secondService(c, Route{Name: "other", Paths: []string{"/x", "/orders/{oid}"}})
		}, []string{
			`services[1].routes[0].paths[1]: conflicts with services[0].routes[1].paths[0] of route "get": same hosts, path, methods, headers and priority`,
		}},
		{"conflict with sets in another order", func(c *Config) {
			r := route(c)
			r.Hosts = []string{"a.example.com", "b.example.com"}
			r.Methods = []string{"GET", "POST"}
			r.Headers = []HeaderMatch{{Name: "X-A", Values: []string{"1", "2"}}, {Name: "X-B"}}
			r.Priority = 3
			secondService(c, Route{
				Name:     "other",
				Hosts:    []string{"b.example.com", "a.example.com"},
				Paths:    []string{"/orders"},
				Methods:  []string{"POST", "GET"},
				Headers:  []HeaderMatch{{Name: "x-b"}, {Name: "x-a", Values: []string{"2", "1"}}},
				Priority: 3,
			})
		}, []string{
			`services[1].routes[0].paths[0]: conflicts with services[0].routes[0].paths[0] of route "list": same hosts, path, methods, headers and priority`,
		}},
		{"no conflict when anything differs", func(c *Config) {
			secondService(c,
				Route{Name: "r1", Paths: []string{"/orders"}, Priority: 1},
				Route{Name: "r2", Paths: []string{"/orders"}, Methods: []string{"GET"}},
				Route{Name: "r3", Paths: []string{"/orders"}, Hosts: []string{"a.example.com"}},
				Route{Name: "r4", Paths: []string{"/orders"}, Headers: []HeaderMatch{{Name: "X-A"}}},
				Route{Name: "r5", Paths: []string{"/orders/"}},
				Route{Name: "r6", Paths: []string{"/orders/*"}},
			)
		}, nil},

		// Upstreams.
		{"upstream needs a target", func(c *Config) { upstream(c).Targets = nil }, []string{
			"upstreams[0].targets: at least one target is required",
		}},
		{"targets", func(c *Config) {
			upstream(c).Targets = []Target{
				{Address: "10.0.0.1:8080", Weight: 1000},
				{Address: "[::1]:1"},
				{Address: "a.internal:65535"},
				{Address: ""},
				{Address: "10.0.0.2"},
				{Address: ":80"},
				{Address: "a:0"},
				{Address: "a:65536"},
				{Address: "a:http"},
				{Address: "a:+80"},
				{Address: "10.0.0.1:8080"},
				{Address: "b:1", Weight: -1},
				{Address: "c:1", Weight: 1001},
			}
		}, []string{
			"upstreams[0].targets[3].address: required",
			`upstreams[0].targets[4].address: must be host:port, such as "10.0.0.1:8080" or "orders.internal:80"`,
			`upstreams[0].targets[5].address: must be host:port, such as "10.0.0.1:8080" or "orders.internal:80"`,
			"upstreams[0].targets[6].address: must have a port number between 1 and 65535",
			"upstreams[0].targets[7].address: must have a port number between 1 and 65535",
			"upstreams[0].targets[8].address: must have a port number between 1 and 65535",
			"upstreams[0].targets[9].address: must have a port number between 1 and 65535",
			"upstreams[0].targets[10].address: duplicate of targets[0]",
			"upstreams[0].targets[11].weight: must be between 0 and 1000",
			"upstreams[0].targets[12].weight: must be between 0 and 1000",
		}},
		{"balancers", func(c *Config) {
			c.Upstreams = append(c.Upstreams,
				Upstream{Name: "a", Targets: []Target{{Address: "a:1"}}, Balancer: BalancerRoundRobin},
				Upstream{Name: "b", Targets: []Target{{Address: "a:1"}}, Balancer: BalancerLeastConnections},
				Upstream{Name: "c", Targets: []Target{{Address: "a:1"}}, Balancer: BalancerConsistentHash, HashOn: &HashOn{Source: HashOnClientIP}},
				Upstream{Name: "d", Targets: []Target{{Address: "a:1"}}, Balancer: BalancerConsistentHash, HashOn: &HashOn{Source: HashOnCookie, Name: "session"}},
				Upstream{Name: "e", Targets: []Target{{Address: "a:1"}}, Balancer: "random"},
			)
		}, []string{"upstreams[5].balancer: must be round-robin, least-connections or consistent-hash"}},
		{"consistent-hash needs hash_on", func(c *Config) { upstream(c).Balancer = BalancerConsistentHash }, []string{
			"upstreams[0].hash_on: required with balancer consistent-hash",
		}},
		{"hash_on needs consistent-hash", func(c *Config) { upstream(c).HashOn = &HashOn{Source: HashOnClientIP} }, []string{
			"upstreams[0].hash_on: only allowed with balancer consistent-hash",
		}},
		{"hash_on fields", func(c *Config) {
			upstream(c).Balancer = BalancerConsistentHash
			upstream(c).HashOn = &HashOn{Source: "query", Name: "x"}
			c.Upstreams = append(c.Upstreams,
				Upstream{Name: "a", Targets: []Target{{Address: "a:1"}}, Balancer: BalancerConsistentHash, HashOn: &HashOn{Source: HashOnHeader}},
				Upstream{Name: "b", Targets: []Target{{Address: "a:1"}}, Balancer: BalancerConsistentHash, HashOn: &HashOn{Source: HashOnCookie, Name: "a b"}},
				Upstream{Name: "c", Targets: []Target{{Address: "a:1"}}, Balancer: BalancerConsistentHash, HashOn: &HashOn{Source: HashOnClientIP, Name: "x"}},
				Upstream{Name: "d", Targets: []Target{{Address: "a:1"}}, Balancer: BalancerConsistentHash, HashOn: &HashOn{}},
			)
		}, []string{
			"upstreams[0].hash_on.source: must be header, cookie or client-ip",
			"upstreams[1].hash_on.name: required with source header",
			"upstreams[2].hash_on.name: must be a cookie name",
			"upstreams[3].hash_on.name: not allowed with source client-ip",
			"upstreams[4].hash_on.source: required",
		}},
		{"timeouts and retries", func(c *Config) {
			upstream(c).Timeouts = Timeouts{Connect: -1, Read: Duration(-time.Second), Write: Duration(time.Hour)}
			upstream(c).Retries = 11
		}, []string{
			"upstreams[0].timeouts.connect: must not be negative",
			"upstreams[0].timeouts.read: must not be negative",
			"upstreams[0].retries: must be between 0 and 10",
		}},
		{"negative retries", func(c *Config) { upstream(c).Retries = -1 }, []string{
			"upstreams[0].retries: must be between 0 and 10",
		}},
		{"health check with defaults", func(c *Config) { upstream(c).HealthCheck = &ActiveHealthCheck{Path: "/healthz"} }, nil},
		{"health check", func(c *Config) {
			upstream(c).HealthCheck = &ActiveHealthCheck{
				Path:               "healthz",
				Interval:           Duration(50 * time.Millisecond),
				Timeout:            Duration(10 * time.Millisecond),
				HealthyThreshold:   101,
				UnhealthyThreshold: -1,
				Statuses:           []int{200, 99, 600},
			}
		}, []string{
			`upstreams[0].health_check.path: must start with "/"`,
			"upstreams[0].health_check.interval: must be at least 100ms",
			"upstreams[0].health_check.healthy_threshold: must be between 0 and 100",
			"upstreams[0].health_check.unhealthy_threshold: must be between 0 and 100",
			"upstreams[0].health_check.statuses[1]: must be between 100 and 599",
			"upstreams[0].health_check.statuses[2]: must be between 100 and 599",
		}},
		{"health check path required", func(c *Config) { upstream(c).HealthCheck = &ActiveHealthCheck{} }, []string{
			"upstreams[0].health_check.path: required",
		}},
		{"health check timeout not below interval", func(c *Config) {
			upstream(c).HealthCheck = &ActiveHealthCheck{Path: "/", Interval: Duration(time.Second), Timeout: Duration(time.Second)}
		}, []string{"upstreams[0].health_check.timeout: must be less than the interval (1s)"}},
		{"health check default timeout not below interval", func(c *Config) {
			upstream(c).HealthCheck = &ActiveHealthCheck{Path: "/", Interval: Duration(time.Second)}
		}, []string{"upstreams[0].health_check.timeout: must be less than the interval (1s); the default is 2s"}},
		{"health check timeout not below default interval", func(c *Config) {
			upstream(c).HealthCheck = &ActiveHealthCheck{Path: "/", Timeout: Duration(5 * time.Second)}
		}, []string{"upstreams[0].health_check.timeout: must be less than the interval (5s)"}},
		{"health check negative durations", func(c *Config) {
			upstream(c).HealthCheck = &ActiveHealthCheck{Path: "/", Interval: -1, Timeout: -1}
		}, []string{
			"upstreams[0].health_check.interval: must not be negative",
			"upstreams[0].health_check.timeout: must not be negative",
		}},
		{"passive", func(c *Config) {
			upstream(c).Passive = &PassiveHealthCheck{EjectFor: -1, Statuses: []int{503, 600}}
			c.Upstreams = append(c.Upstreams,
				Upstream{Name: "a", Targets: []Target{{Address: "a:1"}}, Passive: &PassiveHealthCheck{ConsecutiveFailures: 1001}},
				Upstream{Name: "b", Targets: []Target{{Address: "a:1"}}, Passive: &PassiveHealthCheck{ConsecutiveFailures: 1000}},
			)
		}, []string{
			"upstreams[0].passive.consecutive_failures: must be between 1 and 1000",
			"upstreams[0].passive.eject_for: must not be negative",
			"upstreams[0].passive.statuses[1]: must be between 100 and 599",
			"upstreams[1].passive.consecutive_failures: must be between 1 and 1000",
		}},

		// Consumers.
		{"credentials", func(c *Config) {
			c.Consumers[0].Credentials = []Credential{
				{Type: CredentialKey, Key: "key-one"},
				{Type: CredentialBasic, Username: "u", Password: "p"},
				{Type: CredentialJWT, Subject: "s", Secret: "hmac"},
				{},
				{Type: "oauth"},
				{Type: CredentialKey, Username: "u2"},
				{Type: CredentialBasic, Username: "u3", Secret: "x"},
				{Type: CredentialJWT, Key: "k", Password: "p"},
			}
		}, []string{
			"consumers[0].credentials[3].type: required",
			"consumers[0].credentials[4].type: must be key, basic or jwt",
			"consumers[0].credentials[5].key: required with type key",
			"consumers[0].credentials[5].username: not allowed with type key",
			"consumers[0].credentials[6].password: required with type basic",
			"consumers[0].credentials[6].secret: not allowed with type basic",
			"consumers[0].credentials[7].key: not allowed with type jwt",
			"consumers[0].credentials[7].password: not allowed with type jwt",
			"consumers[0].credentials[7].subject: required with type jwt",
			"consumers[0].credentials[7].secret: required with type jwt",
		}},
		{"duplicate key and username", func(c *Config) {
			c.Consumers[0].Credentials = append(c.Consumers[0].Credentials, Credential{Type: CredentialBasic, Username: "bob", Password: "x"})
			c.Consumers = append(c.Consumers, Consumer{Name: "other", Credentials: []Credential{
				{Type: CredentialBasic, Username: "bob", Password: "y"},
				{Type: CredentialKey, Key: "key-one"},
				{Type: CredentialKey, Key: "key-two"},
				{Type: CredentialKey, Key: "key-two"},
			}})
		}, []string{
			`consumers[1].credentials[0].username: already used by consumer "app" (consumers[0].credentials[1])`,
			`consumers[1].credentials[1].key: already used by consumer "app" (consumers[0].credentials[0])`,
			`consumers[1].credentials[3].key: already used by consumer "other" (consumers[1].credentials[2])`,
		}},
		{"same key as a jwt subject", func(c *Config) {
			c.Consumers = append(c.Consumers, Consumer{Name: "other", Credentials: []Credential{
				{Type: CredentialJWT, Subject: "key-one", Secret: "key-one"},
				{Type: CredentialBasic, Username: "key-one", Password: "key-one"},
			}})
		}, nil},

		// Certificates.
		{"certificate snis", func(c *Config) {
			kp := keyPairB()
			c.Certificates[0].SNIs = []string{"api.example.com", "*.example.com", "Bad.example.com", "api.example.com"}
			c.Certificates = append(c.Certificates,
				Certificate{Name: "b", SNIs: []string{"*.example.com", "b.example.com"}, Cert: kp.cert, Key: kp.key},
				Certificate{Name: "c", Cert: kp.cert, Key: kp.key},
			)
		}, []string{
			"certificates[0].snis[2]: " + hostRule,
			`certificates[0].snis[3]: already served by certificate "example" (certificates[0].snis[0])`,
			`certificates[1].snis[0]: already served by certificate "example" (certificates[0].snis[1])`,
			"certificates[2].snis: at least one SNI is required",
		}},
		{"certificate and key required", func(c *Config) { c.Certificates[0].Cert, c.Certificates[0].Key = "", "" }, []string{
			"certificates[0].cert: required",
			"certificates[0].key: required",
		}},
		{"certificate not PEM", func(c *Config) { c.Certificates[0].Cert = "not a certificate" }, []string{
			"certificates[0].cert: must be a PEM certificate chain",
		}},
		{"certificate and key switched", func(c *Config) {
			c.Certificates[0].Cert, c.Certificates[0].Key = c.Certificates[0].Key, c.Certificates[0].Cert
		}, []string{`certificates[0].cert: must hold only CERTIFICATE PEM blocks, block 1 is "PRIVATE KEY"`}},
		{"certificate chain with a bad certificate", func(c *Config) {
			c.Certificates[0].Cert += "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
		}, []string{"certificates[0].cert: certificate 2: malformed certificate"}},
		{"certificate chain", func(c *Config) { c.Certificates[0].Cert += keyPairB().cert }, nil},
		{"key of another certificate", func(c *Config) { c.Certificates[0].Key = keyPairB().key }, []string{
			"certificates[0].key: must be the PEM private key of the first certificate of cert: private key does not match public key",
		}},
		{"key not PEM", func(c *Config) { c.Certificates[0].Key = "secret" }, []string{
			"certificates[0].key: must be the PEM private key of the first certificate of cert: failed to find any PEM data in key input",
		}},

		// Policies.
		{"policies", func(c *Config) {
			c.GlobalPolicies = append(c.GlobalPolicies, Policy{}, Policy{Name: "Rate_Limit"}, Policy{Name: "a" + strings.Repeat("b", 63)})
			c.Services[0].Policies = []Policy{{Name: "1cors"}}
			route(c).Policies = []Policy{{Name: "-x"}}
			c.Consumers[0].Policies = []Policy{{Name: "external", Config: map[string]any{"plugin": "ok-1", "config": map[string]any{"anything": []any{1, "x"}}}}, {Name: ""}}
		}, []string{
			`services[0].routes[0].policies[0].name: must be 1 to 63 lower-case letters, digits or "-", starting with a letter`,
			`services[0].policies[0].name: must be 1 to 63 lower-case letters, digits or "-", starting with a letter`,
			"consumers[0].policies[1].name: required",
			"global_policies[1].name: required",
			`global_policies[2].name: must be 1 to 63 lower-case letters, digits or "-", starting with a letter`,
			`global_policies[3].name: must be 1 to 63 lower-case letters, digits or "-", starting with a letter`,
		}},
		{"policy name of 63 characters is looked up", func(c *Config) {
			c.GlobalPolicies = append(c.GlobalPolicies, Policy{Name: "a" + strings.Repeat("b", 62)})
		}, []string{
			`global_policies[1].name: unknown policy "a` + strings.Repeat("b", 62) + `"`,
		}},
		{"unknown policy", func(c *Config) {
			route(c).Policies = []Policy{{Name: "x"}}
			c.Consumers[0].Policies = []Policy{{Name: "rate-limits", Config: map[string]any{"limits": []any{}}}}
		}, []string{
			`services[0].routes[0].policies[0].name: unknown policy "x"`,
			`consumers[0].policies[0].name: unknown policy "rate-limits"`,
		}},
		{"policy kind twice in a list", func(c *Config) {
			cors := Policy{Name: "cors", Config: map[string]any{"origins": []any{"https://app.example.com"}}}
			c.Services[0].Policies = []Policy{cors, {Name: "request-id"}, cors, {Name: "cors"}}
			c.GlobalPolicies = append(c.GlobalPolicies, Policy{Name: "request-id"})
			route(c).Policies = []Policy{{Name: "x"}, {Name: "x"}}
		}, []string{
			`services[0].routes[0].policies[0].name: unknown policy "x"`,
			`services[0].routes[0].policies[1].name: policy "x" is already set at services[0].routes[0].policies[0]`,
			`services[0].policies[2].name: policy "cors" is already set at services[0].policies[0]`,
			`services[0].policies[3].name: policy "cors" is already set at services[0].policies[0]`,
			`global_policies[1].name: policy "request-id" is already set at global_policies[0]`,
		}},
		{"policy kind in several lists", func(c *Config) {
			limit := Policy{Name: "rate-limit", Config: map[string]any{"limits": []any{map[string]any{"requests": 10, "window": "minute"}}}}
			c.GlobalPolicies = append(c.GlobalPolicies, limit)
			c.Services[0].Policies = []Policy{limit, {Name: "request-id"}}
			route(c).Policies = []Policy{limit}
			c.Consumers[0].Policies = []Policy{limit}
		}, nil},
		{"policy config", func(c *Config) {
			route(c).Policies = []Policy{{Name: "rate-limit", Config: map[string]any{"limits[0].window": "bad", "per": "bad"}}}
			c.Services[0].Routes[1].Policies = []Policy{{Name: "cors", Config: map[string]any{`["a.b"]`: "bad", "": "bad"}}}
			c.Services[0].Policies = []Policy{{Name: "external", Config: map[string]any{"error": "plugin not found"}}}
			c.Consumers[0].Policies = []Policy{{Name: "rate-limit", Config: map[string]any{"limits": "good"}}}
		}, []string{
			"services[0].routes[0].policies[0].config.limits[0].window: is bad",
			"services[0].routes[0].policies[0].config.per: is bad",
			"services[0].routes[1].policies[0].config: is bad",
			`services[0].routes[1].policies[0].config["a.b"]: is bad`,
			"services[0].policies[0].config: plugin not found",
		}},
		{"policy config refers to the configuration", func(c *Config) {
			c.Upstreams = append(c.Upstreams, Upstream{Name: "orders-v2", Targets: []Target{{Address: "10.0.0.2:8080"}}})
			route(c).Policies = []Policy{{Name: "traffic-split", Config: map[string]any{"upstream": "orders-v2"}}}
			c.Services[0].Routes[1].Policies = []Policy{{Name: "traffic-split", Config: map[string]any{"upstream": "orders-v3"}}}
			c.Consumers = append(c.Consumers, Consumer{Name: "guest"})
			c.Services[0].Policies = []Policy{{Name: "key-auth", Config: map[string]any{"consumer": "guest"}}}
			c.GlobalPolicies = append(c.GlobalPolicies, Policy{Name: "basic-auth", Config: map[string]any{"consumer": "nobody"}})
		}, []string{
			`services[0].routes[1].policies[0].config.upstream: unknown upstream "orders-v3"`,
			`global_policies[1].config.consumer: unknown consumer "nobody"`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			got := errorLines(t, c.Validate(testKinds))
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate() errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestValidateReportsEverything checks that problems in every part of a
// configuration are reported together, in the order of the file.
func TestValidateReportsEverything(t *testing.T) {
	c := validConfig()
	c.Upstreams[0].Retries = 99
	c.Services[0].Routes[0].Paths[1] = "v1"
	c.Services[0].Routes[1].Methods = []string{"get"}
	c.Consumers[0].Credentials[0].Type = ""
	c.Certificates[0].SNIs = nil
	c.GlobalPolicies[0].Name = "X"
	want := []string{
		"upstreams[0].retries: must be between 0 and 10",
		`services[0].routes[0].paths[1]: must start with "/"`,
		"services[0].routes[1].methods[0]: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE (upper case)",
		"consumers[0].credentials[0].type: required",
		"certificates[0].snis: at least one SNI is required",
		`global_policies[0].name: must be 1 to 63 lower-case letters, digits or "-", starting with a letter`,
	}
	err := c.Validate(testKinds)
	if got := errorLines(t, err); !slices.Equal(got, want) {
		t.Fatalf("Validate() errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := err.Error(), strings.Join(want, "\n"); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestValidateKeepsSecrets checks that no message quotes a credential or a
// private key, whatever is wrong with them.
func TestValidateKeepsSecrets(t *testing.T) {
	c := validConfig()
	c.Consumers = append(c.Consumers,
		Consumer{Name: "b", Credentials: []Credential{{Type: CredentialKey, Key: "key-one"}, {Type: CredentialBasic, Username: "bob", Password: "pw-1"}}},
		Consumer{Name: "c", Credentials: []Credential{{Type: CredentialBasic, Username: "bob", Password: "pw-2", Key: "key-3"}, {Type: CredentialKey, Secret: "jwt-secret"}}},
	)
	kp := keyPairB()
	c.Certificates = append(c.Certificates,
		Certificate{Name: "mismatch", SNIs: []string{"b.example.com"}, Cert: kp.cert, Key: keyPairA().key},
		Certificate{Name: "switched", SNIs: []string{"c.example.com"}, Cert: kp.key, Key: kp.cert},
		Certificate{Name: "garbage", SNIs: []string{"d.example.com"}, Cert: kp.cert, Key: "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"},
	)
	err := c.Validate(testKinds)
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	msg := err.Error()
	for _, secret := range []string{"key-one", "pw-1", "pw-2", "key-3", "jwt-secret", "c2VjcmV0", pemBody(keyPairA().key), pemBody(kp.key)} {
		if strings.Contains(msg, secret) {
			t.Errorf("errors quote the secret %q:\n%s", secret, msg)
		}
	}
}

// pemBody is the first base64 line of a PEM block.
func pemBody(s string) string {
	return strings.Split(s, "\n")[1]
}

func TestParsePath(t *testing.T) {
	cases := []struct {
		path string
		want PathPattern
	}{
		{"/", PathPattern{Segments: []Segment{{}}}},
		{"/*", PathPattern{Prefix: true}},
		{"/orders", PathPattern{Segments: []Segment{{Literal: "orders"}}}},
		{"/orders/", PathPattern{Segments: []Segment{{Literal: "orders"}, {}}}},
		{"/orders/{id}/items", PathPattern{Segments: []Segment{{Literal: "orders"}, {Param: "id"}, {Literal: "items"}}}},
		{"/api/{v}/*", PathPattern{Segments: []Segment{{Literal: "api"}, {Param: "v"}}, Prefix: true}},
	}
	for _, tc := range cases {
		got, err := ParsePath(tc.path)
		if err != nil {
			t.Errorf("ParsePath(%q) error: %v", tc.path, err)
			continue
		}
		if !slices.Equal(got.Segments, tc.want.Segments) || got.Prefix != tc.want.Prefix {
			t.Errorf("ParsePath(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
	}
}
