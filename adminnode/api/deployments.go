package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

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
		Source: (*apitypes.DeploymentSource)(d.Source), Skipped: skippedOut(d.Skipped),
	}
}

func skippedOut(sk []store.SkippedInstance) []apitypes.SkippedInstance {
	if len(sk) == 0 {
		return nil
	}
	out := make([]apitypes.SkippedInstance, len(sk))
	for i, s := range sk {
		out[i] = apitypes.SkippedInstance(s)
	}
	return out
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
	// The warnings are judged on the configuration the transaction
	// resolves, against the fleet read before it: resolving and
	// validating a large draft once more only for them would double the
	// deploy's cost.
	fl, err := s.fleetOf(q.ctx, group)
	if err != nil {
		return nil, err
	}
	var warnings []apitypes.Warning
	latest, err := s.deps.LatestDeployment(q.ctx, group)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err := s.flushForNumbering(q.ctx); err != nil {
		return nil, err
	}
	dep, err := s.deps.Freeze(q.ctx, group, version, func(d store.Draft, number uint64) (store.Deployment, error) {
		// build validates what it signs, with the same errors as the
		// API's validation: the resolved configuration is validated once.
		resolved, err := resolvePlaceholders(&d.Config, st)
		if err != nil {
			return store.Deployment{}, err
		}
		dep, err := s.build(group, number, &d.Config, resolved, q.who.user, in.Message)
		if err != nil {
			return store.Deployment{}, err
		}
		// A feature level some gateways lack is refused, or with
		// allow_partial their instances are left out; what the warnings
		// say is then about plugins only.
		if dep.Skipped, err = fl.partial(group, resolved, in.AllowPartial); err != nil {
			return store.Deployment{}, err
		}
		if warnings = fl.lacks(deploy.ExternalPlugins(resolved), 0, ""); in.Strict && len(warnings) > 0 {
			return store.Deployment{}, refuseWarnings(group, warnings)
		}
		// latest is read before the transaction: when another deployment
		// came in between, the comparison is skipped rather than made
		// against the wrong one.
		if !in.Force && latest.Number != 0 && latest.Number == number-1 && sameConfig(dep, latest) {
			return store.Deployment{}, nothingToDeploy(group, version, latest.Number)
		}
		return dep, nil
	})
	if err != nil {
		return nil, err
	}
	q.auditTarget = fmt.Sprintf("group/%s/deployments/%d", group, dep.Number)
	q.auditDetail = fmt.Sprintf("deployment %d of draft version %d, %s", dep.Number, version, dep.Checksum)
	if len(dep.Skipped) > 0 {
		names := make([]string, len(dep.Skipped))
		for i, sk := range dep.Skipped {
			names[i] = sk.Instance
		}
		q.auditDetail += "; partial, skipping " + strings.Join(names, ", ")
	}
	out := deploymentOut(dep)
	out.Warnings = warnings
	return out, nil
}

// sameConfig says whether two deployments carry the same configuration:
// as written (placeholders unresolved) and as resolved, both. Either alone
// would hide a change: an environment value changed since (same template,
// new values), or a literal replaced by a placeholder of the same value.
func sameConfig(a, b store.Deployment) bool {
	return bytes.Equal(a.Config, b.Config) && bytes.Equal(a.Template, b.Template)
}

// nothingToDeploy is the answer to deploying a draft identical to the
// current deployment: deploying it would only bump the number, and hide
// from the history that nothing changed.
func nothingToDeploy(group string, draftVersion, current uint64) *apiError {
	return newError(http.StatusConflict, apitypes.CodeNothingToDeploy,
		"nothing to deploy: the draft of group %q (version %d) is what deployment %d runs", group, draftVersion, current)
}

func (s *Server) listDeployments(q *request) (any, error) {
	deps, err := s.deps.ListDeployments(q.ctx, q.group.Name)
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
		d, err := s.deps.LatestDeployment(ctx, group)
		if errors.Is(err, store.ErrNotFound) {
			return d, notFound("group %q has no deployment yet", group)
		}
		return d, err
	}
	n, err := parseNumber(field, ref)
	if err != nil {
		return store.Deployment{}, err
	}
	return s.deps.GetDeployment(ctx, group, n)
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
// history only grows, so what ran when stays answerable. The draft is then
// set to that configuration as written, unless keep_draft: left as it was,
// the change rolled back would ship again with the next, unrelated deploy.
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
	fl, err := s.fleetOf(q.ctx, group)
	if err != nil {
		return nil, err
	}
	if err := s.flushForNumbering(q.ctx); err != nil {
		return nil, err
	}
	dep, err := s.deps.Rollback(q.ctx, group, to, func(src store.Deployment, number uint64) (store.Deployment, error) {
		cfg, err := decodeDeployment(src)
		if err != nil {
			return store.Deployment{}, err
		}
		// An earlier configuration may need a feature level some gateways
		// lack (it was a partial deployment, or they were downgraded).
		skipped, err := fl.partial(group, cfg, in.AllowPartial)
		if err != nil {
			return store.Deployment{}, err
		}
		// The configuration gateways ran is redeployed as it was, not
		// resolved again with today's settings; its template goes with it.
		d, err := s.sign(group, number, cfg, q.who.user, in.Message)
		d.Template, d.Skipped = src.Template, skipped
		return d, err
	})
	if err != nil {
		return nil, err
	}
	q.auditDetail = fmt.Sprintf("deployment %d rolls back to %d, %s", dep.Number, to, dep.Checksum)
	out := deploymentOut(dep)
	out.Draft = apitypes.DraftKept
	if !in.KeepDraft {
		reset, err := s.resetDraft(q, dep)
		if err != nil {
			return nil, err
		}
		if reset {
			out.Draft = apitypes.DraftReset
		}
	}
	q.auditDetail += ", draft " + out.Draft
	return out, nil
}

// resetDraft sets the group's draft to dep's configuration as written. A
// draft written meanwhile (its version moved between the read and the
// write) is someone's newer work: it is kept, and resetDraft says false.
func (s *Server) resetDraft(q *request, dep store.Deployment) (bool, error) {
	cfg, err := template(dep)
	if err != nil {
		return false, err
	}
	cur, err := s.store.GetDraft(q.ctx, dep.Group)
	if err != nil {
		return false, err
	}
	_, err = s.store.PutDraft(q.ctx, dep.Group, *cfg, cur.Version, q.who.user)
	switch {
	case errors.Is(err, store.ErrConflict):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("set the draft of group %q to deployment %d: %w", dep.Group, dep.Number, err)
	}
	return true, nil
}

// rolloutTick re-reads a watched roll-out even when nothing reported:
// statuses age into Lost Connection with time alone.
const rolloutTick = time.Second

// rollout answers where a deployment is in its roll-out to the group's
// instances: at once, or with ?index= (Consul-style blocking) when the
// answer's index differs from the caller's, or after wait. Deployments and
// instance changes wake it through changes, instances' reports through
// reports.
func (s *Server) rollout(q *request) (any, error) {
	dep, err := s.deployment(q.ctx, q.group.Name, "number", q.vars["number"])
	if err != nil {
		return nil, err
	}
	known, blocking, err := indexOf(q)
	if err != nil {
		return nil, err
	}
	wait, err := waitOf(q)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	tick := time.NewTicker(rolloutTick)
	defer tick.Stop()
	for {
		_, changed := s.changes.current()
		_, reported := s.reports.current()
		out, err := s.readRollout(q.ctx, dep)
		if err != nil || !blocking || out.Index != known {
			return out, err
		}
		select {
		case <-changed:
		case <-reported:
		case <-tick.C:
		case <-timer.C:
			return out, nil
		case <-q.ctx.Done():
			return nil, q.ctx.Err()
		}
	}
}

func (s *Server) readRollout(ctx context.Context, dep store.Deployment) (apitypes.Rollout, error) {
	ins, err := s.instances(ctx, store.InstanceFilter{Group: dep.Group})
	if err != nil {
		return apitypes.Rollout{}, err
	}
	cur, err := s.current(ctx, dep.Group)
	if err != nil {
		return apitypes.Rollout{}, err
	}
	states := s.states()
	skipped := map[string]string{}
	for _, sk := range dep.Skipped {
		skipped[sk.Instance] = sk.Reason
	}
	views := make([]status.RolloutView, len(ins))
	for i, in := range ins {
		st := states[in.Name]
		views[i] = status.RolloutView{Name: in.Name, Obs: status.Observation{LastHeartbeat: st.LastHeartbeat,
			AppliedDeployment: st.AppliedDeployment, AppliedChecksum: st.AppliedChecksum, Ready: st.Ready, LastError: st.LastError},
			Skipped: skipped[in.Name]}
	}
	r := s.thresholds.RolloutOf(status.Current{Number: dep.Number, Checksum: dep.Checksum}, cur.Number, views, s.now())
	out := apitypes.Rollout{Group: dep.Group, Deployment: dep.Number, Checksum: dep.Checksum, CurrentDeployment: cur.Number,
		State: r.State, Done: r.Done(), Applied: r.Applied, Skipped: r.Skipped, Total: len(ins), Index: r.Index,
		Instances: make([]apitypes.RolloutInstance, len(ins))}
	for i, in := range r.Instances {
		out.Instances[i] = apitypes.RolloutInstance{Name: in.Name, Host: ins[i].Host, State: in.State, Status: in.Status,
			AppliedDeployment: views[i].Obs.AppliedDeployment, Reason: in.Reason}
	}
	return out, nil
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
