package install

import (
	"os"
	"path/filepath"
	"testing"

	"initos/internal/testenv"
)

// TestFATSizes formats empty ESPs of sizes around go-diskfs's FAT sizing
// edge and has fsck.fat check each.
func TestFATSizes(t *testing.T) {
	fsck := testenv.Tool(t, "fsck.vfat")
	if got := fatSafeSize(64<<20, 512); got >= 64<<20 {
		t.Errorf("fatSafeSize(64 MiB) = %d, want less (go-diskfs's FAT is short there)", got)
	}
	for _, mib := range []int64{36, 40, 64, 100, 260, 261, 500} {
		p := filepath.Join(t.TempDir(), "esp.img")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(mib << 20)
		err = formatESP(f, 0, mib<<20, 512, "INITOS_A", []ESPFile{{Path: "/EFI/BOOT/x.txt", Data: []byte("x"), Size: 1}})
		f.Close()
		if err != nil {
			t.Errorf("formatESP(%d MiB) = %v", mib, err)
			continue
		}
		testenv.Run(t, fsck, "-n", p)
	}
}
