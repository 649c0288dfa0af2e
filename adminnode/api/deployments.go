package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

func deploymentOut(d store.Deployment) apitypes.Deployment {
	return apitypes.Deployment{
		Group: d.Group, Number: d.Number, Checksum: d.Checksum, Author: d.Author, Message: d.Message,
		CreatedAt: d.CreatedAt, RollbackOf: d.RollbackOf, Signature: base64.StdEncoding.EncodeToString(d.Signature),
		Source: (*apitypes.DeploymentSource)(d.Source),
	}
}

// sign makes the stored form of a signed deployment of cfg.
func (s *Server) sign(group string, number uint64, cfg *deploy.Config, author, message string) (store.Deployment, error) {
	d, err := deploy.NewDeployment(s.domain.Name, group, number, cfg, author, message, s.now(), catalog.Checker{})
	if err != nil {
		return store.Deployment{}, err
	}
	d.Sign(s.key)
	return store.Deployment{
		Checksum: d.Checksum, Config: d.Config, Signature: d.Signature,
		Author: d.Author, Message: d.Message, CreatedAt: d.CreatedAt,
	}, nil
}

// optionalJSON decodes a body that may be absent.
func optionalJSON(q *request, v any) error {
	data, err := readBody(q)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil
	}
	return decodeJSONBytes(data, v)
}

// deploy freezes the draft into the next deployment: its placeholders
// resolved with the group's environment, validated, encoded canonically,
// checksummed and signed, in the store's transaction, so that numbers have
// no gaps and what is stored is exactly what was validated. The draft as
// written is kept beside it, for exports.
func (s *Server) deploy(q *request) (any, error) {
	var in apitypes.DeployRequest
	if err := optionalJSON(q, &in); err != nil {
		return nil, err
	}
	group := q.group.Name
	q.auditTarget = "group/" + group + "/deployments"
	version := in.DraftVersion
	if version == 0 {
		d, err := s.store.GetDraft(q.ctx, group)
		if err != nil {
			return nil, err
		}
		version = d.Version
	}
	if version == 0 {
		return nil, conflict("group %q has no draft to deploy: write one first (PUT /groups/%s/draft)", group, group)
	}
	st, err := s.settingsOf(q.ctx, q.group.Environment)
	if err != nil {
		return nil, err
	}
	dep, err := s.store.Freeze(q.ctx, group, version, func(d store.Draft, number uint64) (store.Deployment, error) {
		resolved, err := resolve(&d.Config, st)
		if err != nil {
			return store.Deployment{}, err
		}
		return s.build(group, number, &d.Config, resolved, q.who.user, in.Message)
	})
	if err != nil {
		return nil, err
	}
	q.auditTarget = fmt.Sprintf("group/%s/deployments/%d", group, dep.Number)
	q.auditDetail = fmt.Sprintf("deployment %d of draft version %d, %s", dep.Number, version, dep.Checksum)
	return deploymentOut(dep), nil
}

func (s *Server) listDeployments(q *request) (any, error) {
	deps, err := s.store.ListDeployments(q.ctx, q.group.Name)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Deployment, len(deps))
	for i, d := range deps {
		out[i] = deploymentOut(d)
	}
	return out, nil
}

// deployment reads the path's deployment (a number or "latest").
func (s *Server) deployment(ctx context.Context, group, field, ref string) (store.Deployment, error) {
	if ref == "latest" {
		d, err := s.store.LatestDeployment(ctx, group)
		if errors.Is(err, store.ErrNotFound) {
			return d, notFound("group %q has no deployment yet", group)
		}
		return d, err
	}
	n, err := parseNumber(field, ref)
	if err != nil {
		return store.Deployment{}, err
	}
	return s.store.GetDeployment(ctx, group, n)
}

func decodeDeployment(d store.Deployment) (*deploy.Config, error) {
	cfg, err := deploy.DecodeCanonical(d.Config)
	if err != nil {
		return nil, fmt.Errorf("decode deployment %d of group %q: %w", d.Number, d.Group, err)
	}
	return cfg, nil
}

func (s *Server) getDeployment(q *request) (any, error) {
	d, err := s.deployment(q.ctx, q.group.Name, "number", q.vars["number"])
	if err != nil {
		return nil, err
	}
	out := deploymentOut(d)
	cfg, err := decodeDeployment(d)
	if err != nil {
		return nil, err
	}
	if len(d.Template) > 0 {
		if cfg, err = hideResolvedSecrets(d.Config, d.Template); err != nil {
			return nil, fmt.Errorf("redact deployment %d of group %q: %w", d.Number, d.Group, err)
		}
		tmpl, err := template(d)
		if err != nil {
			return nil, err
		}
		t := redact(*tmpl)
		out.Template = &t
	}
	red := redact(*cfg)
	out.Config = &red
	return out, nil
}

func (s *Server) diffDeployments(q *request) (any, error) {
	from, err := s.deployment(q.ctx, q.group.Name, "from", q.vars["from"])
	if err != nil {
		return nil, err
	}
	to, err := s.deployment(q.ctx, q.group.Name, "to", q.vars["to"])
	if err != nil {
		return nil, err
	}
	a, err := decodeDeployment(from)
	if err != nil {
		return nil, err
	}
	b, err := decodeDeployment(to)
	if err != nil {
		return nil, err
	}
	return apitypes.Diff{Group: q.group.Name, From: fmt.Sprint(from.Number), To: fmt.Sprint(to.Number), Changes: diffChanges(a, b)}, nil
}

// rollback deploys an earlier deployment's configuration as a new number:
// history only grows, so what ran when stays answerable. The draft is left
// as it is.
func (s *Server) rollback(q *request) (any, error) {
	var in apitypes.RollbackRequest
	if err := optionalJSON(q, &in); err != nil {
		return nil, err
	}
	group := q.group.Name
	to, err := parseNumber("number", q.vars["number"])
	if err != nil {
		return nil, err
	}
	q.auditTarget = fmt.Sprintf("group/%s/deployments/%d", group, to)
	if in.Message == "" {
		in.Message = fmt.Sprintf("roll back to deployment %d", to)
	}
	dep, err := s.store.Rollback(q.ctx, group, to, func(src store.Deployment, number uint64) (store.Deployment, error) {
		cfg, err := decodeDeployment(src)
		if err != nil {
			return store.Deployment{}, err
		}
		// The configuration gateways ran is redeployed as it was, not
		// resolved again with today's settings; its template goes with it.
		d, err := s.sign(group, number, cfg, q.who.user, in.Message)
		d.Template = src.Template
		return d, err
	})
	if err != nil {
		return nil, err
	}
	q.auditDetail = fmt.Sprintf("deployment %d rolls back to %d, %s", dep.Number, to, dep.Checksum)
	return deploymentOut(dep), nil
}

// RemoveOffline deletes the instances offline for longer than the removal
// threshold, each with an audit entry by "system", and returns their
// names. The admin node calls it periodically.
func (s *Server) RemoveOffline(ctx context.Context) ([]string, error) {
	if s.thresholds.RemoveAfter == 0 {
		return nil, nil
	}
	var removed []string
	now := s.now()
	states := s.states()
	for _, name := range slices.Sorted(maps.Keys(states)) {
		st := states[name]
		obs := status.Observation{LastHeartbeat: st.LastHeartbeat}
		if !s.thresholds.DueForRemoval(obs, now) {
			continue
		}
		in, err := s.store.GetInstance(ctx, st.Instance)
		if err != nil {
			continue
		}
		if err := s.store.DeleteInstance(ctx, in.Name); err != nil {
			return removed, fmt.Errorf("remove offline instance %q: %w", in.Name, err)
		}
		s.forget(in.Name)
		removed = append(removed, in.Name)
		s.changes.bump()
		_, err = s.store.AppendAudit(ctx, store.AuditEntry{
			Time: now, User: "system", Action: "instance.remove", Target: "instance/" + in.Name, Group: in.Group,
			Result: store.AuditOK, Detail: fmt.Sprintf("offline since %s (last heartbeat)", st.LastHeartbeat.Format("2006-01-02T15:04:05Z07:00")),
		})
		if err != nil {
			return removed, fmt.Errorf("audit removal of instance %q: %w", in.Name, err)
		}
	}
	return removed, nil
}
