package deploy

import (
	"errors"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

// PolicyConsumers indexes the configuration's consumers by their
// credentials, for the authentication policies. The consumers have no
// chains yet: the gateway gives them theirs.
func (c *Config) PolicyConsumers() *policy.Consumers {
	cs := policy.NewConsumers()
	for i := range c.Consumers {
		con := &c.Consumers[i]
		pc := cs.Add(con.Name)
		for _, cred := range con.Credentials {
			switch cred.Type {
			case CredentialKey:
				cs.AddKey(pc, cred.Key)
			case CredentialBasic:
				cs.AddBasic(pc, cred.Username, cred.Password)
			case CredentialJWT:
				cs.AddJWT(pc, cred.Subject, cred.Secret)
			}
		}
	}
	return cs
}

// validationEnv is what policy kinds see when a configuration is checked:
// its consumers and upstream names, and nothing that runs.
func (c *Config) validationEnv() *policy.Env {
	names := make(map[string]bool, len(c.Upstreams))
	for _, u := range c.Upstreams {
		names[u.Name] = true
	}
	return &policy.Env{
		Logger:    hclog.NewNullLogger(),
		Consumers: c.PolicyConsumers(),
		Upstream: func(name string) (any, bool) {
			return name, names[name]
		},
	}
}

// policy checks one policy's name and, for a known kind, its
// configuration, reporting the kind's errors under path.config.
func (v *validator) policy(path string, p *Policy) {
	np := path + ".name"
	switch {
	case p.Name == "":
		v.errs.Add(np, "required")
		return
	case !policyName.MatchString(p.Name):
		v.errs.Add(np, `must be 1 to 63 lower-case letters, digits or "-", starting with a letter`)
		return
	}
	kind, ok := catalog.Lookup(p.Name)
	if !ok {
		v.errs.Addf(np, "unknown policy %q", p.Name)
		return
	}
	if _, err := kind.New(p.Config, v.env); err != nil {
		var ces policy.ConfigErrors
		if !errors.As(err, &ces) {
			v.errs.Add(path+".config", err.Error())
			return
		}
		for _, e := range ces {
			v.errs.Add(policy.Under(path+".config", e.Path), e.Message)
		}
	}
}
