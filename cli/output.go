package cli

import (
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
)

// none fills empty cells, so that every row has the same number of
// words for awk and cut.
const none = "-"

// render prints v as indented JSON with -o json, else calls table. JSON is
// the API's answer as the client decoded it, so that scripts see the
// documented field names.
func (a *app) render(cmd *cobra.Command, v any, table func(w io.Writer)) error {
	w := cmd.OutOrStdout()
	if a.output == outputJSON {
		return printJSON(w, v)
	}
	table(w)
	return nil
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
