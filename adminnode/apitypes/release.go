package apitypes

import "time"

// ReleaseMessage is what a release's signature by the domain key covers.
func ReleaseMessage(version, sha256Hex string) []byte {
	return []byte("gatehouse-release\n" + version + "\n" + sha256Hex + "\n")
}

// HeaderReleaseSHA256 carries a release's SHA-256 (hex) with its binary.
const HeaderReleaseSHA256 = "X-Release-Sha256"

// Release is a gateway binary kept by the admin node (docs/upgrades.md):
// GET /releases, POST /releases?version=V with the binary as the body.
type Release struct {
	Version string `json:"version"`
	// SHA256 is the hex SHA-256 of the binary.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Signature is the domain key's Ed25519 signature (base64) of
	// "gatehouse-release\n<version>\n<sha256>\n".
	Signature  []byte    `json:"signature"`
	UploadedAt time.Time `json:"uploaded_at"`
	UploadedBy string    `json:"uploaded_by,omitempty"`
	// Groups lists the groups that run it or roll out from or to it.
	Groups []string `json:"groups,omitempty"`
}

// GroupGatewayUpdate is the body of PUT /groups/{group}/gateway: the
// release the group runs, reached by a rolling upgrade.
type GroupGatewayUpdate struct {
	// Version is a release's; "" the node managers' own binary.
	Version string `json:"version"`
	// MaxUnavailable is how many instances are replaced at once (default
	// 1, or the group's last value).
	MaxUnavailable int `json:"max_unavailable,omitempty"`
	// OnFailure is what a failed batch does: "rollback" (default) or
	// "pause". Of a paused rollout, Version its To resumes it and its From
	// rolls it back.
	OnFailure string `json:"on_failure,omitempty"`
}

// GroupGateway is the body of GET /groups/{group}/gateway: the group's
// release, its rollout under way or last, and the earlier ones.
type GroupGateway struct {
	Group          string           `json:"group"`
	Version        string           `json:"version"`
	MaxUnavailable int              `json:"max_unavailable"`
	Rollout        *ReleaseRollout  `json:"rollout,omitempty"`
	History        []ReleaseRollout `json:"history,omitempty"`
	// Instances is the release each instance of the group runs, as its
	// node manager last reported ("" for the node manager's own binary).
	Instances map[string]string `json:"instances,omitempty"`
}

// ReleaseRollout is a change of a group's release.
type ReleaseRollout struct {
	ID   uint64 `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
	// State: rolling, done, rolling-back, rolled-back, paused.
	State string `json:"state"`
	// OnFailure is what a failed batch does: "rollback" (the group goes
	// back to From) or "pause" (it stays as it is until resumed or rolled
	// back).
	OnFailure      string         `json:"on_failure"`
	MaxUnavailable int            `json:"max_unavailable"`
	By             string         `json:"by,omitempty"`
	StartedAt      time.Time      `json:"started_at"`
	EndedAt        time.Time      `json:"ended_at,omitzero"`
	Done           []string       `json:"done,omitempty"`
	Batch          []string       `json:"batch,omitempty"`
	Error          string         `json:"error,omitempty"`
	Events         []RolloutEvent `json:"events,omitempty"`
}

// RolloutEvent is one step of a rollout.
type RolloutEvent struct {
	At       time.Time `json:"at"`
	Instance string    `json:"instance,omitempty"`
	What     string    `json:"what"`
}

// AgentRelease is the release an instance runs, in the node manager's
// desired instances: it downloads GET /agent/v1/releases/{version} and
// checks the checksum and the signature with the domain key.
type AgentRelease struct {
	Version   string `json:"version"`
	SHA256    string `json:"sha256"`
	Signature []byte `json:"signature"`
}
