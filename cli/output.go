package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// none fills empty cells, so that every row has the same number of
// words for awk and cut.
const none = "-"

// render prints v as indented JSON with -o json, as YAML with -o yaml,
// else calls table. Both are the API's answer as the client decoded it,
// so that scripts see the documented field names.
func (a *app) render(cmd *cobra.Command, v any, table func(w io.Writer)) error {
	w := cmd.OutOrStdout()
	if a.output != outputTable {
		return a.print(w, v)
	}
	table(w)
	return nil
}

// print prints v in the -o format, json or yaml.
func (a *app) print(w io.Writer, v any) error {
	if a.output == outputYAML {
		return printYAML(w, v)
	}
	return printJSON(w, v)
}

// printYAML prints v as YAML with the field names, order and values of
// its JSON: the JSON is what the API documents, and one set of names for
// both formats means one set for scripts to learn. It goes through a
// YAML node tree rather than a map, which would lose the order of the
// fields and the precision of large integers.
func printYAML(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("print YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	node, err := yamlNode(dec)
	if err != nil {
		return fmt.Errorf("print YAML: %w", err)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return fmt.Errorf("print YAML: %w", err)
	}
	return enc.Close()
}

// yamlNode reads the next JSON value of dec as a YAML node. Scalars keep
// their JSON type by their tag, so that a string such as "true" or "007"
// is quoted rather than read back as another type.
func yamlNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if t == '{' {
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		for dec.More() {
			if t == '{' {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key.(string)})
			}
			child, err := yamlNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, child)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(t.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
	default: // nil
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("print JSON: %w", err)
	}
	return nil
}

// table lays out rows in columns. Cells are single-line: tabs and line
// breaks in values would break the columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		c = strings.Join(strings.Fields(c), " ")
		if c == "" {
			c = none
		}
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() { _ = t.tw.Flush() }

// fields prints one object as "Name:  value" lines.
func fields(w io.Writer, pairs ...string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		v := pairs[i+1]
		if v == "" {
			v = none
		}
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], v)
	}
	_ = tw.Flush()
}

// when prints a time as RFC 3339 in the local zone, to the second:
// absolute times stay true when output is kept or pasted, and sort as
// text. Zero is empty.
func (a *app) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(a.loc).Format(time.RFC3339)
}

func (a *app) whenPtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return a.when(*t)
}

// labels prints a label map as "k=v,k=v", keys sorted, as selectors are
// written.
func labels(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// number prints a number, with 0 as empty: deployment numbers start at 1.
func number(n uint64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(n, 10)
}

// shortChecksum keeps 12 hex digits of "sha256:<hex>", as many as a
// person compares.
func shortChecksum(sum string) string {
	hex, ok := strings.CutPrefix(sum, "sha256:")
	if !ok || len(hex) <= 12 {
		return sum
	}
	return hex[:12]
}

// truncate shortens s to max runes, for table cells whose full value is
// in -o json.
func truncate(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}

// plural says "1 error", "2 errors".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
