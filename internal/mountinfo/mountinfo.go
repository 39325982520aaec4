// Package mountinfo holds what /proc/self/mountinfo readers share: the
// kernel's octal escaping of paths (proc(5)).
package mountinfo

import "strings"

// Unescape undoes mountinfo's octal escapes ("\040" for a space, "\011"
// tab, "\012" newline, "\134" backslash). Anything else stays as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if c, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// octal parses three octal digits that fit a byte.
func octal(s string) (byte, bool) {
	n := 0
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return 0, false
		}
		n = n*8 + int(s[i]-'0')
	}
	return byte(n), n <= 0xff
}
