package fieldpath

import "strconv"

// Join returns the path of the field or map key name below path. Keys of
// policy configurations can hold any text, so a name that would make the
// path ambiguous (a dot, a bracket, a space, or nothing at all) is quoted:
// config["a.b"], headers[""].
func Join(path, name string) string {
	if !plain(name) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// Index returns the path of element i of the list at path.
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// Under returns the path sub, itself a path such as "limits[0].window" or
// a Join result, inside path: how a policy's own error is placed under the
// policy's position in the configuration.
func Under(path, sub string) string {
	switch {
	case sub == "":
		return path
	case path == "":
		return sub
	case sub[0] == '[':
		return path + sub
	}
	return path + "." + sub
}

func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
