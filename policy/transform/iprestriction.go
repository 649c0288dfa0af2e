package transform

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/fieldpath"
	"github.com/gatehouse/gatehouse/policy"
)

// ipRestriction admits or refuses a request by the address of its TCP
// peer. X-Forwarded-For is not read: any client can write it.
type ipRestriction struct {
	allow, deny *addrSet
}

func newIPRestriction(config map[string]any, _ *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &ipRestriction{
		allow: readAddrSet(r, "allow", &errs),
		deny:  readAddrSet(r, "deny", &errs),
	}
	r.Done()
	if !r.Has("allow") && !r.Has("deny") {
		errs.Add("", `at least one of "allow" and "deny" is required`)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// readAddrSet reads a list of addresses and prefixes; nil when the list
// is not given.
func readAddrSet(r *policy.Reader, key string, errs *policy.ConfigErrors) *addrSet {
	entries := r.Strings(key)
	if entries == nil {
		return nil
	}
	if len(entries) == 0 {
		r.Fail(key, "must not be empty")
		return nil
	}
	var prefixes []netip.Prefix
	for i, s := range entries {
		p, err := parsePrefix(s)
		if err != nil {
			errs.Add(fieldpath.Index(key, i), err.Error())
			continue
		}
		prefixes = append(prefixes, p)
	}
	return newAddrSet(prefixes)
}

// parsePrefix reads a CIDR prefix or a single address. A prefix with bits
// set past its length is refused: "10.0.0.1/8" is more likely a typo for
// "10.0.0.1/32" than a way to write "10.0.0.0/8".
func parsePrefix(s string) (netip.Prefix, error) {
	bad := fmt.Errorf(`must be an IP address or a CIDR prefix such as "10.0.0.0/8" or "2001:db8::/32", got %q`, s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, bad
		}
		if m := p.Masked(); m != p {
			return p, fmt.Errorf("%q has bits set past the prefix length: write %q", s, m.String())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return p, bad
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		// Clients' addresses are compared in IPv4 form.
		return p, fmt.Errorf("%q is an IPv4-mapped IPv6 address: write it in IPv4 form", s)
	}
	return p, nil
}

// Run refuses a denied address, and with an allow list any address not on
// it. An address the engine could not tell (a Unix socket) is on no list.
func (p *ipRestriction) Run(c *policy.Context) bool {
	a := c.Request.RemoteAddr().Unmap()
	if p.deny.contains(a) || p.allow != nil && !p.allow.contains(a) {
		c.Reject(http.StatusForbidden, "forbidden", "the client's address is not allowed")
		return false
	}
	return true
}

// addrSet is a set of prefixes as sorted, disjoint address ranges per
// family, so that a lookup is a binary search whatever the list's size,
// and allocates nothing.
type addrSet struct {
	v4 []span[uint32]
	v6 []span[u128]
}

type span[T uint32 | u128] struct{ lo, hi T }

// u128 is an IPv6 address as a number.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func newAddrSet(prefixes []netip.Prefix) *addrSet {
	s := &addrSet{}
	for _, p := range prefixes {
		if p.Addr().Is4() {
			b := p.Addr().As4()
			lo := binary.BigEndian.Uint32(b[:])
			host := uint32(uint64(1)<<(32-p.Bits()) - 1)
			s.v4 = append(s.v4, span[uint32]{lo, lo | host})
			continue
		}
		lo := v6Number(p.Addr())
		hi := lo
		if bits := p.Bits(); bits < 64 {
			hi.hi |= uint64(1)<<(64-bits) - 1
			hi.lo = ^uint64(0)
		} else if bits < 128 {
			hi.lo |= uint64(1)<<(128-bits) - 1
		}
		s.v6 = append(s.v6, span[u128]{lo, hi})
	}
	s.v4 = mergeSpans(s.v4, func(a, b uint32) bool { return a < b }, func(a uint32) uint32 { return a + 1 })
	s.v6 = mergeSpans(s.v6, u128.less, func(a u128) u128 {
		if a.lo == ^uint64(0) {
			return u128{a.hi + 1, 0}
		}
		return u128{a.hi, a.lo + 1}
	})
	return s
}

func v6Number(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// mergeSpans sorts spans and joins those that overlap or touch.
func mergeSpans[T uint32 | u128](spans []span[T], less func(a, b T) bool, next func(T) T) []span[T] {
	slices.SortFunc(spans, func(a, b span[T]) int {
		switch {
		case less(a.lo, b.lo):
			return -1
		case less(b.lo, a.lo):
			return 1
		}
		return 0
	})
	var out []span[T]
	for _, s := range spans {
		if n := len(out); n > 0 {
			last := &out[n-1]
			// next(hi) wraps to zero past the family's last address:
			// such a span covers everything after it.
			if end := next(last.hi); !less(end, s.lo) || less(end, last.hi) {
				if less(last.hi, s.hi) {
					last.hi = s.hi
				}
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

func (s *addrSet) contains(a netip.Addr) bool {
	if s == nil {
		return false
	}
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		i := search(s.v4, func(lo uint32) bool { return x < lo })
		return i >= 0 && x <= s.v4[i].hi
	}
	if a.Is6() {
		x := v6Number(a)
		i := search(s.v6, func(lo u128) bool { return x.less(lo) })
		return i >= 0 && !s.v6[i].hi.less(x)
	}
	return false
}

// search returns the last span whose lo is not after the address (after
// reports whether lo is), -1 if none.
func search[T uint32 | u128](spans []span[T], after func(lo T) bool) int {
	i, j := 0, len(spans)
	for i < j {
		h := int(uint(i+j) >> 1)
		if after(spans[h].lo) {
			j = h
		} else {
			i = h + 1
		}
	}
	return i - 1
}
