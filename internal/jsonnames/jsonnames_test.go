package jsonnames

import (
	"slices"
	"testing"
	"time"
)

type inner struct {
	Good  string `json:"good_name"`
	Bad   int
	Camel string `json:"camelCase,omitempty"`
}

type Embedded struct {
	Promoted string `json:"promoted"`
}

type outer struct {
	Embedded
	When    time.Time         `json:"when"`
	List    []inner           `json:"list"`
	ByName  map[string]*inner `json:"by_name"`
	Skipped string            `json:"-"`
	Any     any               `json:"any"`
	private string
	Nested  map[string][]nested `json:"nested"`
}

type nested struct {
	Deep string
}

func TestProblems(t *testing.T) {
	got := Problems(outer{}, nil)
	want := []string{
		"jsonnames.inner.Bad: no json tag, encoded as Bad",
		"jsonnames.inner.Camel: camelCase",
		"jsonnames.nested.Deep: no json tag, encoded as Deep",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := Problems(Embedded{}); len(got) != 0 {
		t.Errorf("a clean type: %q", got)
	}
}
