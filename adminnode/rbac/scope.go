package rbac

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// ScopeMatches reports whether s covers g: always for a domain scope, when
// g is one of the named groups, or when g has every label of the selector
// with the same value. An invalid scope (store.Scope.Valid) matches
// nothing, so that a binding written around the store cannot widen what
// it grants.
func ScopeMatches(s store.Scope, g store.Group) bool {
	switch {
	case !s.Valid():
		return false
	case s.Domain:
		return true
	case len(s.Groups) > 0:
		return slices.Contains(s.Groups, g.Name)
	}
	for k, want := range s.Selector {
		if v, ok := g.Labels[k]; !ok || v != want {
			return false
		}
	}
	return true
}

// ParseSelector parses "key=value,key=value" as given to the CLI and the
// API. Spaces around keys and values are ignored. Empty keys and values,
// repeated keys and an empty selector are refused: an empty selector would
// match every group, which is what a domain scope is for. Errors wrap
// store.ErrInvalid and name the bad pair.
func ParseSelector(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty selector: %w", store.ErrInvalid)
	}
	sel := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case strings.TrimSpace(pair) == "":
			return nil, fmt.Errorf("selector %q has an empty pair: %w", s, store.ErrInvalid)
		case !ok:
			return nil, fmt.Errorf("selector pair %q is not key=value: %w", pair, store.ErrInvalid)
		case k == "":
			return nil, fmt.Errorf("selector pair %q has an empty key: %w", pair, store.ErrInvalid)
		case v == "":
			return nil, fmt.Errorf("selector pair %q has an empty value: %w", pair, store.ErrInvalid)
		}
		if _, dup := sel[k]; dup {
			return nil, fmt.Errorf("selector pair %q repeats key %q: %w", pair, k, store.ErrInvalid)
		}
		sel[k] = v
	}
	return sel, nil
}

// ParseScope builds a scope from the CLI's or the API's three ways of
// giving one, of which exactly one must be used.
func ParseScope(domain bool, groups []string, selector string) (store.Scope, error) {
	kinds := 0
	if domain {
		kinds++
	}
	if len(groups) > 0 {
		kinds++
	}
	if selector != "" {
		kinds++
	}
	if kinds != 1 {
		return store.Scope{}, fmt.Errorf("scope must be exactly one of domain, groups, selector: %w", store.ErrInvalid)
	}
	switch {
	case domain:
		return store.Scope{Domain: true}, nil
	case len(groups) > 0:
		if slices.Contains(groups, "") {
			return store.Scope{}, fmt.Errorf("empty group name in scope: %w", store.ErrInvalid)
		}
		return store.Scope{Groups: slices.Clone(groups)}, nil
	}
	sel, err := ParseSelector(selector)
	if err != nil {
		return store.Scope{}, err
	}
	return store.Scope{Selector: sel}, nil
}
