package api

import "testing"

func TestStillValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		puts []uint64 // indexes "c h" is put at, in order
		at   uint64
		want bool
	}{
		{"never passed", nil, 5, false},
		{"passed at this index", []uint64{5}, 5, true},
		{"passed before a change", []uint64{5}, 6, false},
		{"a late put of an older index leaves the newer", []uint64{6, 5}, 6, true},
		{"a late put of an older index does not count", []uint64{6, 5}, 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v stillValid
			for _, i := range tc.puts {
				v.put(i, "c h")
			}
			if got := v.holds(tc.at, "c h"); got != tc.want {
				t.Errorf("holds(%d) = %v after puts %v, want %v", tc.at, got, tc.puts, tc.want)
			}
			if v.holds(tc.at, "c other") {
				t.Error("another host's key holds")
			}
		})
	}
	// A newer index forgets the others.
	var v stillValid
	v.put(1, "a")
	v.put(2, "b")
	if v.holds(2, "a") || !v.holds(2, "b") {
		t.Errorf("after puts at 1 and 2: %+v", v.ok)
	}
}
