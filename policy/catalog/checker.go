package catalog

import (
	"errors"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/policy"
)

// Checker checks the policies of configurations against the kinds of the
// catalog: it is the deploy.PolicyKinds that every caller of deploy's
// validation passes, so that deploy itself depends on no policy. Its zero
// value is ready.
type Checker struct{}

// PolicyChecker returns the checker of cfg's policies. Policies are built
// with what they see when checked: cfg's consumers and upstream names, and
// nothing that runs.
func (Checker) PolicyChecker(cfg *deploy.Config) deploy.PolicyChecker {
	names := make(map[string]bool, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		names[u.Name] = true
	}
	return configChecker{env: &policy.Env{
		Logger:    hclog.NewNullLogger(),
		Consumers: Consumers(cfg),
		Upstream: func(name string) (any, bool) {
			return name, names[name]
		},
	}}
}

type configChecker struct {
	env *policy.Env
}

func (c configChecker) Known(name string) bool {
	_, ok := kinds[name]
	return ok
}

// Check builds the policy and returns the kind's ConfigErrors as
// deploy.Errors, with their paths relative to config.
func (c configChecker) Check(name string, config map[string]any) error {
	kind, ok := kinds[name]
	if !ok {
		return errors.New("unknown policy")
	}
	_, err := kind.New(config, c.env)
	var ces policy.ConfigErrors
	if !errors.As(err, &ces) {
		return err
	}
	es := make(deploy.Errors, len(ces))
	for i, e := range ces {
		es[i] = deploy.FieldError{Path: e.Path, Message: e.Message}
	}
	return es.Err()
}

// Consumers indexes cfg's consumers by their credentials, for the
// authentication policies. The consumers have no chains yet: the gateway
// gives them theirs.
func Consumers(cfg *deploy.Config) *policy.Consumers {
	cs := policy.NewConsumers()
	for i := range cfg.Consumers {
		con := &cfg.Consumers[i]
		pc := cs.Add(con.Name)
		for _, cred := range con.Credentials {
			switch cred.Type {
			case deploy.CredentialKey:
				cs.AddKey(pc, cred.Key)
			case deploy.CredentialBasic:
				cs.AddBasic(pc, cred.Username, cred.Password)
			case deploy.CredentialJWT:
				cs.AddJWT(pc, cred.Subject, cred.Secret)
			}
		}
	}
	return cs
}
