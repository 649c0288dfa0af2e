package api

import (
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse/deploy"
)

// Secrets of a configuration (consumer credentials' keys, passwords and
// secrets; certificates' private keys) are write-only: the API shows
// deploy.Redacted in their place. Writing deploy.Redacted back keeps the
// stored value, so that a configuration read, edited and written back
// keeps its secrets without the editor ever seeing them.

func redact(cfg deploy.Config) deploy.Config {
	out := cfg
	out.Consumers = make([]deploy.Consumer, len(cfg.Consumers))
	for i, c := range cfg.Consumers {
		out.Consumers[i] = redactConsumer(c)
	}
	out.Certificates = make([]deploy.Certificate, len(cfg.Certificates))
	for i, c := range cfg.Certificates {
		out.Certificates[i] = redactCertificate(c)
	}
	if cfg.Consumers == nil {
		out.Consumers = nil
	}
	if cfg.Certificates == nil {
		out.Certificates = nil
	}
	return out
}

func hide(s string) string {
	if s == "" {
		return ""
	}
	return deploy.Redacted
}

func redactConsumer(c deploy.Consumer) deploy.Consumer {
	c.Credentials = slices.Clone(c.Credentials)
	for i := range c.Credentials {
		cr := &c.Credentials[i]
		cr.Key, cr.Password, cr.Secret = hide(cr.Key), hide(cr.Password), hide(cr.Secret)
	}
	return c
}

func redactCertificate(c deploy.Certificate) deploy.Certificate {
	c.Key = hide(c.Key)
	return c
}

// keepSecrets replaces each deploy.Redacted secret of cfg with the value
// of the same field in old: the credential at the same position of the
// consumer of the same name, with the same type; the certificate of the
// same name. A placeholder with nothing to keep is an error naming its
// field, never stored as a secret.
func keepSecrets(cfg, old *deploy.Config) error {
	for ci := range cfg.Consumers {
		c := &cfg.Consumers[ci]
		var prev *deploy.Consumer
		if j := slices.IndexFunc(old.Consumers, func(o deploy.Consumer) bool { return o.Name == c.Name }); j >= 0 {
			prev = &old.Consumers[j]
		}
		for k := range c.Credentials {
			cr := &c.Credentials[k]
			var was *deploy.Credential
			if prev != nil && k < len(prev.Credentials) && prev.Credentials[k].Type == cr.Type {
				was = &prev.Credentials[k]
			}
			path := fmt.Sprintf("consumers[%d].credentials[%d]", ci, k)
			for _, f := range []struct {
				name string
				v    *string
				old  func(*deploy.Credential) string
			}{
				{"key", &cr.Key, func(x *deploy.Credential) string { return x.Key }},
				{"password", &cr.Password, func(x *deploy.Credential) string { return x.Password }},
				{"secret", &cr.Secret, func(x *deploy.Credential) string { return x.Secret }},
			} {
				if *f.v != deploy.Redacted {
					continue
				}
				if was == nil || f.old(was) == "" {
					return badRequest(path+"."+f.name, "%s.%s: %q stands for the stored secret, but there is none to keep here: give the value", path, f.name, deploy.Redacted)
				}
				*f.v = f.old(was)
			}
		}
	}
	for i := range cfg.Certificates {
		c := &cfg.Certificates[i]
		if c.Key != deploy.Redacted {
			continue
		}
		j := slices.IndexFunc(old.Certificates, func(o deploy.Certificate) bool { return o.Name == c.Name })
		if j < 0 || old.Certificates[j].Key == "" {
			path := fmt.Sprintf("certificates[%d].key", i)
			return badRequest(path, "%s: %q stands for the stored key, but there is none to keep here: give the key", path, deploy.Redacted)
		}
		c.Key = old.Certificates[j].Key
	}
	return nil
}
