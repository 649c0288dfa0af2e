package storetest

import (
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Opener returns a new, empty store for t, closed when t ends.
type Opener func(t *testing.T) store.Store

// test is a contract test.
type test struct {
	name string
	run  func(t *testing.T, open Opener)
}

// Run runs the contract of the store's domain, groups, hosts, instances,
// drafts, deployments, users, roles, bindings, tokens, join tokens, node
// certificates, audit, settings, snapshots and restores against stores made by open, each
// scenario on a store of its own.
func Run(t *testing.T, open Opener) {
	runAll(t, open, []test{
		{"Domain", testDomain},
		{"GroupsHostsInstances", testGroupsHostsInstances},
		{"DraftOptimisticConcurrency", testDraftOptimisticConcurrency},
		{"Freeze", testFreeze},
		{"ConcurrentDeploysSigned", testConcurrentDeploysSigned},
		{"Deployments", testDeployments},
		{"DeploymentBytesExact", testDeploymentBytesExact},
		{"UsersRolesBindingsTokens", testUsersRolesBindingsTokens},
		{"Audit", testAudit},
		{"AuditConcurrentWriters", testAuditConcurrentWriters},
		{"AuditKeepsAnyText", testAuditKeepsAnyText},
		{"CancelledContext", testCancelledContext},
		{"InstanceStates", testInstanceStates},
		{"JoinTokensAndNodeCerts", testJoinTokensAndNodeCerts},
		{"JoinTokenUsedOnce", testJoinTokenUsedOnce},
		{"PutInstanceStatesSkipsMissing", testPutInstanceStatesSkipsMissing},
		{"GossipKeysAndHostAddress", testGossipKeysAndHostAddress},
		{"PublishKeys", testPublishKeys},
		{"CAs", testCAs},
		{"RestartGenerationAndCapabilities", testRestartGenerationAndCapabilities},
		{"GatewaySettings", testGatewaySettings},
		{"Environments", testEnvironments},
		{"Secrets", testSecrets},
		{"TrustedDomains", testTrustedDomains},
		{"SnapshotRestore", testSnapshotRestore},
		{"RestoreRefusals", testRestoreRefusals},
		{"SnapshotUnderWrites", testSnapshotUnderWrites},
		{"NumberingAboveObserved", testNumberingAboveObserved},
		{"Releases", testReleases},
		{"AdminCerts", testAdminCerts},
	})
}

// RunTraffic runs the contract of the domain's traffic: ingestion once per
// batch, queries, roll-up, pruning and folding.
func RunTraffic(t *testing.T, open Opener) {
	runAll(t, open, []test{
		{"IngestDedupeAndQuery", testIngestDedupeAndQuery},
		{"IngestRefusals", testIngestRefusals},
		{"RollupAndPrune", testRollupAndPrune},
		{"FoldBeyondLimits", testFoldBeyondLimits},
		{"IngestOnceConcurrently", testIngestOnceConcurrently},
	})
}

func runAll(t *testing.T, open Opener, tests []test) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}
