package luks2

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"initos/internal/testenv"
)

// TestDetectSignatureTools makes filesystems and partition tables with
// the real tools and checks each is recognized; zeros and random data
// are not.
func TestDetectSignatureTools(t *testing.T) {
	for _, tc := range []struct {
		tool  string
		args  []string
		stdin string
		want  string
	}{
		{"mkfs.ext4", []string{"-q", "-F"}, "", "ext2/3/4 filesystem"},
		{"mkfs.btrfs", []string{"-q", "-f"}, "", "btrfs filesystem"},
		{"mkfs.vfat", nil, "", "FAT filesystem"},
		{"mkswap", nil, "", "swap space"},
		{"sfdisk", []string{"-q"}, "label: gpt\n", "GPT partition table"},
		{"sfdisk", []string{"-q"}, "label: dos\n,,L\n", "DOS partition table"},
		{"cryptsetup", []string{"luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "KEY"}, "", "LUKS"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			tool := testenv.Tool(t, tc.tool)
			img := newImage(t, 128<<20)
			if tc.tool == "cryptsetup" {
				img = newImage(t, 20<<20)
			}
			args := append([]string{}, tc.args...)
			for i, a := range args {
				if a == "KEY" {
					args[i] = keyFile(t, "k")
				}
			}
			cmd := exec.Command(tool, append(args, img)...)
			cmd.Stdin = strings.NewReader(tc.stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %q: %v\n%s", tc.tool, tc.args, err, out)
			}
			f := openFileRW(t, img)
			if got, err := DetectSignature(f); got != tc.want || err != nil {
				t.Errorf("DetectSignature(%s image) = %q, %v, want %q", tc.tool, got, err, tc.want)
			}
		})
	}
	for _, b := range [][]byte{make([]byte, 1<<20), bytes.Repeat([]byte{0x5a, 0x17, 0xc3}, 1<<18), nil, []byte("LUK")} {
		if got, err := DetectSignature(bytes.NewReader(b)); got != "" || err != nil {
			t.Errorf("DetectSignature(%d bytes without signature) = %q, %v, want none", len(b), got, err)
		}
	}
}

// FuzzDetectSignature: any bytes give an answer, never a panic.
func FuzzDetectSignature(f *testing.F) {
	f.Add([]byte("LUKS\xba\xbe\x00\x02"))
	f.Add(make([]byte, 600))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := DetectSignature(bytes.NewReader(b)); err != nil {
			t.Fatalf("DetectSignature(%d bytes) = %v", len(b), err)
		}
	})
}
