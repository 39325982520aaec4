package image

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"./", "", false},
		{".", "", false},
		{"", "", false},
		{"etc/passwd", "etc/passwd", false},
		{"./etc//passwd/", "etc/passwd", false},
		{"a/./b", "a/b", false},
		{"..", "", true},
		{"../x", "", true},
		{"a/../b", "", true},
		{"a/..", "", true},
		{"/etc/passwd", "", true},
		{"a\x00b", "", true},
		{strings.Repeat("x", 256), "", true},
		{strings.Repeat("a/", 2049), "", true},
		{"..a/b..", "..a/b..", false},
	}
	for _, tt := range tests {
		got, err := CleanPath(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("CleanPath(%q) = %q, %v, want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrUnsafePath) {
			t.Errorf("CleanPath(%q) error %v is not ErrUnsafePath", tt.in, err)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	seeds, _ := os.ReadFile("testdata/entry-names.txt")
	for _, s := range strings.Split(string(seeds), "\n") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := CleanPath(name)
		if err != nil {
			return
		}
		if strings.HasPrefix(p, "/") || strings.Contains(p, "\x00") || len(p) > maxPathLen {
			t.Fatalf("CleanPath(%q) = %q: absolute, NUL or too long", name, p)
		}
		for _, c := range strings.Split(p, "/") {
			if p != "" && (c == "" || c == "." || c == "..") {
				t.Fatalf("CleanPath(%q) = %q: component %q", name, p, c)
			}
		}
		if again, err := CleanPath(p); err != nil || again != p {
			t.Fatalf("CleanPath(CleanPath(%q)) = %q, %v, want %q", name, again, err, p)
		}
		// Joined under a root and cleaned, it must stay under it.
		if j := filepath.Join("/root", p); j != "/root" && !strings.HasPrefix(j, "/root/") {
			t.Fatalf("CleanPath(%q) = %q escapes: %s", name, p, j)
		}
	})
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Config
		err  bool
	}{
		{"minimal", "root=images/roots/host\n", &Config{Root: "images/roots/host"}, false},
		{"spaces and comments", "# c\n\n root = @roots/a \nimage=sha256:ab\n", &Config{Root: "@roots/a", Image: "sha256:ab"}, false},
		{"extra", "root=r\nfallback=q\n", &Config{Root: "r", Extra: map[string]string{"fallback": "q"}}, false},
		{"no root", "image=x\n", nil, true},
		{"no equals", "root\n", nil, true},
		{"repeated", "root=a\nroot=b\n", nil, true},
		{"absolute root", "root=/a\n", nil, true},
		{"dotdot root", "root=a/../../b\n", nil, true},
		{"unclean root", "root=a//b\n", nil, true},
		{"bad key", "Root=a\n", nil, true},
		{"control", "root=a\x01b\n", nil, true},
		{"not utf8", "root=\xff\n", nil, true},
		{"too big", "root=a\n" + strings.Repeat("#", MaxConfigSize), nil, true},
	}
	for _, tt := range tests {
		got, err := ParseConfig([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("ParseConfig(%s) error = %v, want error %v", tt.name, err, tt.err)
			continue
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("ParseConfig(%s) error %v is not ErrConfig", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseConfig(%s) diff (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestConfigRoundTrip(t *testing.T) {
	c := &Config{Root: "images/roots/host", Image: "sha256:00", Extra: map[string]string{"z": "1", "a": "2"}}
	b1, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := c.Marshal()
	if !bytes.Equal(b1, b2) {
		t.Errorf("Marshal is not deterministic:\n%s\n%s", b1, b2)
	}
	want := "# InitOS host root; read by the initrd.\nroot=images/roots/host\nimage=sha256:00\na=2\nz=1\n"
	if string(b1) != want {
		t.Errorf("Marshal = %q, want %q", b1, want)
	}
	back, err := ParseConfig(b1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("round trip diff (-want +got):\n%s", diff)
	}
	p := filepath.Join(t.TempDir(), ConfigName)
	if err := WriteConfigFile(p, c); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadConfigFile(p); err != nil || got.Root != c.Root {
		t.Errorf("ReadConfigFile = %v, %v, want root %s", got, err, c.Root)
	}
}
