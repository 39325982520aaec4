package image

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsafePath reports a layer entry whose name or link target would
// leave the image root (absolute, "..", NUL, over-long).
var ErrUnsafePath = errors.New("unsafe path")

const (
	maxPathLen = 4096 // PATH_MAX
	maxNameLen = 255  // NAME_MAX
)

// CleanPath turns a tar entry name (or hard link target) into a clean path
// relative to the image root: "" for the root itself, otherwise slash
// separated components with no "", "." or "..". It refuses absolute names,
// any ".." component, NUL bytes and names over PATH_MAX/NAME_MAX, wrapping
// ErrUnsafePath. A leading "./" and trailing or doubled slashes are
// accepted, as real layers use them.
func CleanPath(name string) (string, error) {
	switch {
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafePath, name)
	case strings.IndexByte(name, 0) >= 0:
		return "", fmt.Errorf("%w: %q contains NUL", ErrUnsafePath, name)
	case len(name) > maxPathLen:
		return "", fmt.Errorf("%w: name of %d bytes exceeds %d", ErrUnsafePath, len(name), maxPathLen)
	}
	var b strings.Builder
	b.Grow(len(name))
	for rest := name; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		switch {
		case c == "" || c == ".":
			continue
		case c == "..":
			return "", fmt.Errorf("%w: %q has a \"..\" component", ErrUnsafePath, name)
		case len(c) > maxNameLen:
			return "", fmt.Errorf("%w: component of %d bytes in %q exceeds %d", ErrUnsafePath, len(c), name, maxNameLen)
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(c)
	}
	return b.String(), nil
}

// splitPath returns the parent ("" for the root) and last component of a
// clean non-root path.
func splitPath(p string) (dir, base string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

// joinPath joins a clean dir ("" for the root) and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// OCI whiteout names (image-spec layer.md, "Whiteouts").
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)
