package placeholder

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/deploy"
)

// Values maps names to values: a domain's settings, or its secrets.
type Values map[string]string

// Ref is one placeholder of a configuration.
type Ref struct {
	// Path is the field holding it, as validation errors write it:
	// "upstreams[0].targets[0].address", "global_policies[1].config.redis.password".
	Path string
	Name string
	// Secret is true for ${secret:NAME}.
	Secret bool
	// Default is the text after ":-", when HasDefault.
	Default    string
	HasDefault bool
}

// Missing is a name that a configuration uses and that has no value.
type Missing struct {
	Name   string
	Secret bool
	// Paths are the fields using it, in the order of the file.
	Paths []string
}

// MissingError lists every name a configuration needs and that has no
// value, so that they can all be set in one pass.
type MissingError struct {
	// Missing is sorted: settings by name, then secrets by name.
	Missing []Missing
}

// Error lists the names one per line, secrets as secret:NAME, each with
// the fields that use it.
func (e *MissingError) Error() string {
	var b strings.Builder
	if len(e.Missing) == 1 {
		b.WriteString("1 placeholder has no value:")
	} else {
		fmt.Fprintf(&b, "%d placeholders have no value:", len(e.Missing))
	}
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "\n%s (%s)", m.key(), strings.Join(m.Paths, ", "))
	}
	return b.String()
}

// key is how the name is written in messages, and tells a setting from
// the secret of the same name (names cannot hold ":").
func (m Missing) key() string {
	if m.Secret {
		return secretPrefix + m.Name
	}
	return m.Name
}

// Find returns every placeholder of cfg with its field path, in the order
// of the canonical form (policy configuration keys sorted). The error, deploy.Errors, lists the malformed placeholders
// and the placeholders in fields that cannot hold them; the placeholders
// that could be read are returned all the same.
func Find(cfg *deploy.Config) ([]Ref, error) {
	var refs []Ref
	_, errs := substitute(cfg, func(path string, sp spec) string {
		refs = append(refs, Ref{Path: path, Name: sp.name, Secret: sp.secret, Default: sp.def, HasDefault: sp.hasDefault})
		return ""
	})
	return refs, errs.Err()
}

// Resolve returns a copy of cfg with every placeholder replaced by its
// value: ${NAME} from vars, or its default when NAME is not in vars or is
// empty there; ${secret:NAME} from secrets. cfg is left as it is. The
// result holds secrets in clear: deploy it, never export it. It is not
// validated; validate it before deploying.
//
// Malformed placeholders, and placeholders where names and keywords are,
// make a deploy.Errors with every such field's path. Otherwise, names
// without a value make a *MissingError listing them all with the paths
// that use them. Either way no configuration is returned.
func Resolve(cfg *deploy.Config, vars, secrets Values) (*deploy.Config, error) {
	if cfg == nil {
		return nil, errors.New("resolve placeholders: no configuration")
	}
	missing := make(map[string]*Missing)
	out, errs := substitute(cfg, func(path string, sp spec) string {
		v, ok := lookup(sp, vars, secrets)
		if ok {
			return v
		}
		k := Missing{Name: sp.name, Secret: sp.secret}.key()
		m := missing[k]
		if m == nil {
			m = &Missing{Name: sp.name, Secret: sp.secret}
			missing[k] = m
		}
		if !slices.Contains(m.Paths, path) {
			m.Paths = append(m.Paths, path)
		}
		return ""
	})
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, newMissingError(missing)
	}
	return out, nil
}

// substitute returns a copy of cfg in which every placeholder is replaced
// by what replace returns for it, found at path, and the errors of the
// fields that could not be read. Fields that cannot hold placeholders are
// copied as they are.
func substitute(cfg *deploy.Config, replace func(path string, sp spec) string) (*deploy.Config, deploy.Errors) {
	var errs deploy.Errors
	out := walkConfig(cfg, func(f field, s string) string {
		if f.literal {
			if strings.Contains(s, open) {
				errs.Add(f.path(), "names and keywords cannot hold placeholders")
			}
			return s
		}
		resolved, err := expand(s, func(sp spec) string { return replace(f.path(), sp) })
		if err != nil {
			errs.Add(f.path(), err.Error())
		}
		return resolved
	})
	return out, errs
}

// lookup returns the value of a placeholder, and false when it has none.
func lookup(sp spec, vars, secrets Values) (string, bool) {
	if sp.secret {
		v, ok := secrets[sp.name]
		return v, ok
	}
	if v, ok := vars[sp.name]; ok && (v != "" || !sp.hasDefault) {
		return v, true
	}
	return sp.def, sp.hasDefault
}

func newMissingError(missing map[string]*Missing) *MissingError {
	e := &MissingError{Missing: make([]Missing, 0, len(missing))}
	for _, m := range missing {
		e.Missing = append(e.Missing, *m)
	}
	slices.SortFunc(e.Missing, func(a, b Missing) int {
		if a.Secret != b.Secret {
			if a.Secret {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return e
}

// CheckSecrets returns nil when every secret field of cfg (see the package
// doc) is empty or holds exactly one ${secret:NAME} placeholder, and
// otherwise deploy.Errors naming each field that holds something else,
// never its value. A configuration that passes carries no secret in clear
// in the fields known to hold secrets: promotion packages are checked with
// it when they are made and when they are opened.
func CheckSecrets(cfg *deploy.Config) error {
	var errs deploy.Errors
	walkConfig(cfg, func(f field, s string) string {
		if f.secret && s != "" && !isSecretPlaceholder(s) {
			errs.Add(f.path(), "holds a secret in clear: write it as a ${secret:NAME} placeholder, set in each domain's secrets")
		}
		return s
	})
	return errs.Err()
}
