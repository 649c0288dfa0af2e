package api

import (
	"fmt"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
)

// restartInstance hands a restart to the instance's node manager: it bumps
// the instance's restart generation in the store, which the node manager
// sees in its next answer of desired instances and turns into a restart
// of the gateway. The store, not this process, holds the request, so that
// it survives a node manager that is away for a while and is seen by
// every admin node sharing the store. The answer says what to wait on:
// the instance ready under another process.
func (s *Server) restartInstance(q *request) (any, error) {
	in, err := s.instanceAccess(q, rbac.InstanceOperate)
	if err != nil {
		return nil, err
	}
	before := s.states()[in.Name]
	now := s.now()
	updated, err := s.store.RequestRestart(q.ctx, in.Name)
	if err != nil {
		return nil, fmt.Errorf("restart instance %q: %w", in.Name, err)
	}
	q.auditDetail = fmt.Sprintf("restart generation %d", updated.RestartGeneration)
	return apitypes.InstanceRestart{Instance: in.Name, Group: in.Group, Host: in.Host, Generation: updated.RestartGeneration,
		RequestedAt: now.UTC(), PreviousPID: before.PID, PreviousRestarts: before.Restarts,
		Wait: apitypes.Prefix + "/instances/" + in.Name}, nil
}
