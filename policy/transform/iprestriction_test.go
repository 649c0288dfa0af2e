package transform

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

func TestIPRestriction(t *testing.T) {
	tests := []struct {
		config string
		allow  []string
		refuse []string
	}{
		{`{"allow": ["10.0.0.0/8"]}`, []string{"10.1.2.3", "::ffff:10.0.0.1"}, []string{"192.0.2.1", "11.0.0.0", "2001:db8::1"}},
		{`{"deny": ["10.0.0.0/8"]}`, []string{"192.0.2.1", "2001:db8::1", "9.255.255.255"}, []string{"10.1.2.3", "10.255.255.255"}},
		// Deny wins over allow.
		{`{"allow": ["10.0.0.0/8"], "deny": ["10.1.0.0/16"]}`, []string{"10.2.0.1", "10.0.255.255"}, []string{"10.1.2.3", "192.0.2.1"}},
		{`{"allow": ["192.0.2.1", "2001:db8::1"]}`, []string{"192.0.2.1", "2001:db8::1"}, []string{"192.0.2.2", "2001:db8::2"}},
		{`{"allow": ["2001:db8::/32"]}`, []string{"2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"2001:db9::1", "10.0.0.1"}},
		{`{"allow": ["2001:db8:0:1::/64"]}`, []string{"2001:db8:0:1:ffff:ffff:ffff:ffff"}, []string{"2001:db8:0:2::", "2001:db8::ffff"}},
		{`{"allow": ["2001:db8::/65"]}`, []string{"2001:db8::7fff:ffff:ffff:ffff"}, []string{"2001:db8::8000:0:0:0"}},
		{`{"deny": ["0.0.0.0/0"]}`, []string{"::1"}, []string{"0.0.0.0", "255.255.255.255", "127.0.0.1"}},
		{`{"allow": ["::/0"]}`, []string{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"127.0.0.1"}},
		// Touching and overlapping ranges merge.
		{`{"allow": ["10.0.0.0/9", "10.128.0.0/9", "10.64.0.0/10"]}`, []string{"10.0.0.0", "10.127.255.255", "10.128.0.0", "10.255.255.255"}, []string{"9.255.255.255", "11.0.0.0"}},
		// The family's last address.
		{`{"deny": ["255.255.255.254/31", "255.255.255.255", "255.0.0.0/8"]}`, []string{"254.255.255.255"}, []string{"255.255.255.255", "255.0.0.0"}},
		{`{"deny": ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff::/16"]}`, []string{"fffe::1"}, []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff::"}},
	}
	for _, tt := range tests {
		p := policytest.Build(t, ipRestrictionKind, tt.config, nil)
		for _, set := range []struct {
			addrs []string
			pass  bool
		}{{tt.allow, true}, {tt.refuse, false}} {
			for _, a := range set.addrs {
				req := policytest.Get("/x")
				req.Addr = netip.MustParseAddr(a)
				c, ok := run(p, req, nil)
				what := fmt.Sprintf("%s from %s", tt.config, a)
				if ok != set.pass {
					t.Errorf("%s: passed %v, want %v", what, ok, set.pass)
				}
				if !ok {
					wantAnswer(t, what, c, 403, "forbidden")
				}
			}
		}
	}
}

// An address the engine could not tell (a Unix socket) is on no list.
func TestIPRestrictionUnknownAddress(t *testing.T) {
	for config, want := range map[string]bool{
		`{"allow": ["0.0.0.0/0", "::/0"]}`: false,
		`{"deny": ["0.0.0.0/0", "::/0"]}`:  true,
	} {
		req := policytest.Get("/x")
		req.Addr = netip.Addr{}
		if _, ok := run(policytest.Build(t, ipRestrictionKind, config, nil), req, nil); ok != want {
			t.Errorf("%s: passed %v, want %v", config, ok, want)
		}
	}
}

// The merged ranges answer as a scan of the prefixes would.
func TestAddrSetMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			// A narrow first byte, so that prefixes overlap.
			b[0] = byte(0x20 + rng.IntN(2))
			for i := 1; i < 16; i++ {
				b[i] = byte(rng.IntN(256))
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{byte(10 + rng.IntN(2)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	for round := range 50 {
		var prefixes []netip.Prefix
		for range 1 + rng.IntN(300) {
			v6 := rng.IntN(2) == 0
			a := randAddr(v6)
			bits := 8 + rng.IntN(a.BitLen()-7)
			prefixes = append(prefixes, netip.PrefixFrom(a, bits).Masked())
		}
		set := newAddrSet(prefixes)
		for range 2000 {
			a := randAddr(rng.IntN(2) == 0)
			if rng.IntN(4) == 0 {
				// Edges of a prefix.
				p := prefixes[rng.IntN(len(prefixes))]
				a = p.Addr()
				if rng.IntN(2) == 0 {
					a = lastAddr(p)
				}
				if rng.IntN(2) == 0 {
					if n := a.Next(); n.IsValid() {
						a = n
					}
				} else if n := a.Prev(); n.IsValid() {
					a = n
				}
			}
			want := false
			for _, p := range prefixes {
				want = want || p.Contains(a)
			}
			if got := set.contains(a); got != want {
				t.Fatalf("round %d: contains(%s) = %v, want %v", round, a, got, want)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestIPRestrictionConfigErrors(t *testing.T) {
	wantErrors(t, ipRestrictionKind, `{}`, nil, `at least one of "allow" and "deny" is required`)
	wantErrors(t, ipRestrictionKind, `{"allow": ["10.0.0.1/8", "x", "fe80::1%eth0", "::ffff:10.0.0.1", "10.0.0.0/33"], "deny": []}`, nil,
		`allow[0]: "10.0.0.1/8" has bits set past the prefix length: write "10.0.0.0/8"`,
		`allow[1]: must be an IP address or a CIDR prefix such as "10.0.0.0/8" or "2001:db8::/32", got "x"`,
		`allow[2]: must be an IP address or a CIDR prefix such as "10.0.0.0/8" or "2001:db8::/32", got "fe80::1%eth0"`,
		`allow[3]: "::ffff:10.0.0.1" is an IPv4-mapped IPv6 address: write it in IPv4 form`,
		`allow[4]: must be an IP address or a CIDR prefix such as "10.0.0.0/8" or "2001:db8::/32", got "10.0.0.0/33"`,
		`deny: must not be empty`)
	wantErrors(t, ipRestrictionKind, `{"allow": "10.0.0.0/8", "deny": ["10.0.0.0/8", 7], "alow": []}`, nil,
		`allow: must be a list of strings, got a string`,
		`deny[1]: must be a string, got an integer`,
		`alow: unknown field`)
}

func BenchmarkIPRestriction(b *testing.B) {
	small := policytest.Build(b, ipRestrictionKind, `{"allow": ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"], "deny": ["10.66.0.0/16"]}`, nil)
	// A large list: 10,000 scattered /24s and /48s.
	var list []string
	for i := range 5000 {
		list = append(list, fmt.Sprintf(`"%d.%d.%d.0/24"`, 20+i%200, i/200, i%256))
		list = append(list, fmt.Sprintf(`"2001:db8:%x::/48"`, i*7))
	}
	large := policytest.Build(b, ipRestrictionKind, fmt.Sprintf(`{"allow": [%s]}`, strings.Join(list, ", ")), nil)
	for _, bc := range []struct {
		name, addr string
		p          policy.Policy
	}{
		{"small/v4", "10.1.2.3", small},
		{"small/v6", "2001:db8::7", small},
		{"large/v4", "120.24.100.9", large},
		{"large/v6", "2001:db8:1b58::1", large},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchRun(b, bc.p, newBenchReq("GET", "/", bc.addr), nil)
		})
	}
}
