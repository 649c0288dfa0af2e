package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// EncodeYAML writes cfg as block YAML with the fields in the order of the
// JSON encoding, which is the order of the documentation: what `gatehouse
// config dump` prints and the web console edits; Decode reads it back. It
// goes through JSON because that is where the field names (json tags) and
// the encodings of durations live.
func EncodeYAML(cfg *Config) ([]byte, error) {
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js.Bytes(), &doc); err != nil {
		return nil, fmt.Errorf("convert configuration to YAML: %w", err)
	}
	blockStyle(&doc)
	var out bytes.Buffer
	ye := yaml.NewEncoder(&out)
	ye.SetIndent(2)
	if err := ye.Encode(&doc); err != nil {
		return nil, fmt.Errorf("convert configuration to YAML: %w", err)
	}
	if err := ye.Close(); err != nil {
		return nil, fmt.Errorf("convert configuration to YAML: %w", err)
	}
	return out.Bytes(), nil
}

// blockStyle drops the flow style and quotes JSON came with; the encoder
// quotes again the strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
