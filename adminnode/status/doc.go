// Package status turns what the admin node last heard from each gateway
// instance into the status operators see, and sums a group's instances up
// for the rollout view. It is pure logic, apart from the heartbeat
// receiver and the store, so that the rules can be read and tested in one
// place and the API, the web UI and the reaper of dead instances agree.
//
// The status names are API7 Enterprise's, shown to users as they are:
// Healthy, Only Heartbeat, Lost Connection and Offline; Pending is our own,
// for an instance an operator created that has not come up yet.
//
// Decisions:
//
//   - The thresholds are strict: an instance is Lost Connection when its
//     last heartbeat is more than LostAfter old, so at exactly 30 s it is
//     still fresh. A heartbeat stamped in the future (clock skew between
//     hosts) counts as fresh rather than as an error.
//   - Healthy means the instance reports ready and runs exactly the group's
//     current deployment, number and checksum: a number alone would hide an
//     instance that applied a different build of the same number. The rule
//     is the same when the group has no deployment yet (number 0): a ready
//     instance that has applied nothing is Healthy, as there is nothing to
//     apply, but one still running a deployment from elsewhere (for
//     instance moved from another group) is Only Heartbeat, since it serves
//     a configuration the group does not have.
//   - RemoveAfter counts from the last heartbeat, like the other thresholds
//     (hence RemoveAfter > OfflineAfter). A Pending instance is never due
//     for removal: an operator asked for it, and only they should drop it.
//   - In a Summary, UpToDate counts the Healthy instances, so that the
//     rollout figure and the status list never disagree: an instance that
//     once applied the deployment but is lost, or not ready, is not counted.
//     The denominator is every instance of the group, Pending, Lost
//     Connection and Offline ones included, as each is still expected to
//     run the deployment until it is removed. A group without instances has
//     a complete rollout ("0/0"): nothing is left to do.
//   - A Rollout (RolloutOf) follows one deployment rather than the current
//     one, for the commands that deploy and wait: every instance of the
//     group should apply it; Lost Connection and Offline instances that
//     had not reported it applied did not report and fail it as soon as
//     the others have settled, while Pending
//     ones are waited for (their node manager may be starting) until the
//     caller's timeout. Refused means an error naming the deployment, as
//     gateways word their refusals, so that an older refusal still reported
//     does not fail a newer deployment before it is even tried.
package status
