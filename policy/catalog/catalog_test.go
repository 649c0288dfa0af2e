package catalog

import "testing"

// Kinds of one phase must have distinct priorities: a chain relies on it
// to tell a consumer's policy that replaces a route's from one that runs
// beside it.
func TestPrioritiesDistinct(t *testing.T) {
	seen := map[[2]int]string{}
	for _, k := range Kinds() {
		key := [2]int{int(k.Phase), k.Priority}
		if other, dup := seen[key]; dup {
			t.Errorf("%s and %s share phase %s priority %d", k.Name, other, k.Phase, k.Priority)
		}
		seen[key] = k.Name
		if k.New == nil {
			t.Errorf("%s has no constructor", k.Name)
		}
	}
}
