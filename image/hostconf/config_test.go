package hostconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     *Config
	}{
		{"minimal", "root=images/roots/host\n", &Config{Root: "images/roots/host"}},
		{"all keys", "root=r\nroot.a=ra\nroot.b=rb\nrootflags=noatime,compress=zstd\ninit=/sbin/init2\nimage=sha256:ab\nx.y=1\n",
			&Config{Root: "r", RootA: "ra", RootB: "rb", RootFlags: "noatime,compress=zstd", Init: "/sbin/init2", Image: "sha256:ab", Extra: map[string]string{"x.y": "1"}}},
		{"slots only", "root.a=a\nroot.b=b\n", &Config{RootA: "a", RootB: "b"}},
		{"spaces", " root = a \n", &Config{Root: "a"}},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if err != nil {
			t.Errorf("Parse(%s) = %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%s) (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "no root= line"},
		{"one slot", "root.a=x\n", "no root= line (needed unless root.a= and root.b= are both set)"},
		{"no equals", "root\n", "line 1: no '='"},
		{"repeated", "root=a\nroot=b\n", `line 2: key "root" repeated`},
		{"bad key", "Root=a\n", `line 1: invalid key "Root"`},
		{"control", "root=a\x01b\n", `line 1: control character in value of "root"`},
		{"absolute", "root=/a\n", `root "/a" is not a clean relative path`},
		{"dotdot", "root=a/../../b\n", `root "a/../../b" is not a clean relative path`},
		{"unclean", "root=a//b\n", `root "a//b"`},
		{"slot dot", "root=a\nroot.b=./b\n", `root.b "./b"`},
		{"init relative", "root=a\ninit=sbin/init\n", `init "sbin/init" is not a clean absolute path`},
		{"flags subvol", "root=a\nrootflags=noatime,subvolid=5\n", "rootflags: subvolid= is chosen by root="},
		{"flags space", "root=a\nrootflags=a b\n", `rootflags "a b" contains spaces`},
		{"not utf8", "root=\xff\n", "not UTF-8"},
		{"too big", "root=a\n" + strings.Repeat("#", MaxSize), "bytes, at most 65536"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in))
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%s) = %v, want ErrConfig with %q", tt.name, err, tt.want)
		}
	}
}

func TestRootFor(t *testing.T) {
	c := &Config{Root: "r", RootB: "rb"}
	for _, tt := range []struct{ slot, want string }{{"", "r"}, {"a", "r"}, {"b", "rb"}} {
		if got, err := c.RootFor(tt.slot); err != nil || got != tt.want {
			t.Errorf("RootFor(%q) = %q, %v, want %q", tt.slot, got, err, tt.want)
		}
	}
	if _, err := c.RootFor("c"); err == nil || !strings.Contains(err.Error(), `unknown slot "c"`) {
		t.Errorf("RootFor(c) = %v, want unknown slot", err)
	}
	if _, err := (&Config{RootA: "x"}).RootFor("b"); err == nil || !strings.Contains(err.Error(), "no root.b= and no root= line") {
		t.Errorf("RootFor(b) without root = %v", err)
	}
}

func TestMarshal(t *testing.T) {
	c := &Config{Root: "r", RootA: "ra", Init: "/init", Image: "sha256:00", Extra: map[string]string{"z": "1", "a": "2"}}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "# InitOS host root; read by the initrd.\nroot=r\nroot.a=ra\ninit=/init\nimage=sha256:00\na=2\nz=1\n"
	if string(b) != want {
		t.Errorf("Marshal = %q, want %q", b, want)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := (&Config{Root: "r", Extra: map[string]string{"root.a": "x"}}).Marshal(); err == nil {
		t.Errorf("Marshal with a known key in Extra succeeded")
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.conf"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("root=a\nroot=b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal(Parse(%q)) = %v", b, err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(%q)) = %v", b, err)
		}
		if diff := cmp.Diff(c, back); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}
