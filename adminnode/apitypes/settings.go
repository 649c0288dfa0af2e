package apitypes

import "time"

// Environment is a named set of settings of the domain ("prod", "uat"):
// the values placeholders of promoted configurations resolve to, and the
// names of its secrets. A secret's value is never shown.
type Environment struct {
	Name string `json:"name"`
	// Values maps NAME to its value; never null.
	Values map[string]string `json:"values"`
	// Secrets are described, sorted by name; never null.
	Secrets []Secret `json:"secrets"`
	// Version is bumped by every change of Values, and sent as the ETag
	// of GET /environments/{env}.
	Version   uint64    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Secret describes a secret of an environment: when it was set and by
// whom, never its value.
type Secret struct {
	Name  string    `json:"name"`
	SetAt time.Time `json:"set_at"`
	SetBy string    `json:"set_by,omitempty"`
	// Unreadable says the admin node's settings key does not open the
	// stored value (settings.key was replaced or lost): set the secret
	// again.
	Unreadable bool `json:"unreadable,omitempty"`
}

// EnvironmentValues is the body of PUT /environments/{env}: the whole set
// of values, replacing the current one.
type EnvironmentValues struct {
	Values map[string]string `json:"values"`
}

// EnvironmentEdit is the body of PATCH /environments/{env}: names to set
// and names to remove, in one change. Every name in Unset must be set.
type EnvironmentEdit struct {
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
}

// SettingValue is the body of PUT /environments/{env}/values/{name} and
// PUT /environments/{env}/secrets/{name}.
type SettingValue struct {
	Value string `json:"value"`
}

// TrustedDomain is another domain whose packages this one accepts: those
// signed by PublicKey, its signing key as its GET /domain shows it.
type TrustedDomain struct {
	Name string `json:"name"`
	// PublicKey is "ed25519:" and the base64 of the key.
	PublicKey   string    `json:"public_key"`
	Fingerprint string    `json:"fingerprint"`
	AddedAt     time.Time `json:"added_at"`
	AddedBy     string    `json:"added_by,omitempty"`
}

// TrustRequest is the body of PUT /trusted-domains/{name}.
type TrustRequest struct {
	PublicKey string `json:"public_key"`
}
