package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/boot/efi", "/boot/efi"},
		{`/mnt/my\040disk`, "/mnt/my disk"},
		{`/a\011b\012c\134d`, "/a\tb\nc\\d"},
		{`/x\0`, `/x\0`},
		{`/x\09a`, `/x\09a`},
		{`/x\777`, `/x\777`},
		{`\`, `\`},
	} {
		if got := Unescape(c.in); got != c.want {
			t.Errorf("Unescape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
