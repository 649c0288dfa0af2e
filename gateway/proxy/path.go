package proxy

// normalizePath appends to dst the path routing sees: percent-escapes
// decoded, "//" collapsed, "." and ".." segments resolved (never above the
// root). A request cannot then reach a route it does not name by writing
// "/public/../admin" or "/%61dmin"; the same normalised form is what the
// target receives.
func normalizePath(dst, raw []byte) []byte {
	start := len(dst)
	dst = append(dst, '/')
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' && i+2 < len(raw) {
			if h, ok := unhex(raw[i+1]); ok {
				if l, ok := unhex(raw[i+2]); ok {
					c = h<<4 | l
					i += 2
				}
			}
		}
		if c == '/' && dst[len(dst)-1] == '/' {
			continue
		}
		dst = append(dst, c)
	}
	return resolveDots(dst, start)
}

// resolveDots removes "." and ".." segments from dst[start:], which begins
// with "/" and has no empty segments but a last one. The result is written
// in place as "/segment" pieces; ".." drops the piece before it.
func resolveDots(dst []byte, start int) []byte {
	out := start
	for i := start; i < len(dst); {
		j := i + 1
		for j < len(dst) && dst[j] != '/' {
			j++
		}
		seg, last := dst[i+1:j], j == len(dst)
		switch {
		case len(seg) == 1 && seg[0] == '.':
			if last {
				dst[out] = '/'
				out++
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			for out > start {
				out--
				if dst[out] == '/' {
					break
				}
			}
			if last {
				dst[out] = '/'
				out++
			}
		default:
			out += copy(dst[out:], dst[i:j])
		}
		i = j
	}
	if out == start {
		dst[out] = '/'
		out++
	}
	return dst[:out]
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendEscapedPath appends p with every byte that may not stand as it is
// in a URI path percent-encoded.
func appendEscapedPath(dst, p []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range p {
		if pathSafe(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}

// pathSafe: RFC 3986 unreserved, sub-delims, ':', '@' and '/'.
func pathSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/':
		return true
	}
	return false
}
