package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"initos/internal/testenv"
	"initos/luks2"
)

// argon2Flags forces an argon2id cost of mem KiB, one pass, two lanes.
func argon2Flags(mem int) []string {
	return []string{"--pbkdf", "argon2id", "--pbkdf-memory", strconv.Itoa(mem), "--pbkdf-parallel", "2", "--pbkdf-force-iterations", "1"}
}

// TestLuksPeakRSS reproduces issue 11: format and add-key with argon2 at
// 1 GiB peaked at 2.1-2.35 GB RSS (x/crypto/argon2's heap memory, twice),
// where cryptsetup peaks at 1.06 GB. Each of format, add-key (which derives
// twice: unlock, then the new keyslot) and test-passphrase now peaks at no
// more than 1.05 times the argon2 memory cost (512 MiB here).
func TestLuksPeakRSS(t *testing.T) {
	const mem = 512 << 10 // KiB
	bin := buildCLI(t)
	img, key := luksFiles(t)
	limit := int64(mem) * 1024 * 105 / 100
	for _, args := range [][]string{
		append([]string{"luks", "format", "--key-file", key("one"), img}, argon2Flags(mem)...),
		append([]string{"luks", "add-key", "--key-file", key("one"), img, key("two")}, argon2Flags(mem)...),
		{"luks", "test-passphrase", "--key-file", key("two"), img},
	} {
		r := runProc(t, bin, args...)
		t.Logf("initos %s: peak RSS %d MiB (%.3fx the argon2 memory), CPU %v", args[1], r.maxRSS>>20, float64(r.maxRSS)/float64(mem*1024), r.cpu)
		if r.status != 0 || r.maxRSS > limit {
			t.Errorf("initos %s: exit %d (%s), peak RSS %d bytes, want <= %d (1.05 x %d KiB)", args[1], r.status, r.stderr, r.maxRSS, limit, mem)
		}
	}
	cs := testenv.Tool(t, "cryptsetup")
	r := runProc(t, cs, "open", "--test-passphrase", "--key-file", key("two"), img)
	t.Logf("cryptsetup open --test-passphrase: exit %d, peak RSS %d MiB, CPU %v", r.status, r.maxRSS>>20, r.cpu)
}

// memoryCgroup creates a memory cgroup limited to limit bytes (cgroup v2,
// else v1) and returns the command prefix that runs a program inside it.
func memoryCgroup(t *testing.T, limit int64) []string {
	t.Helper()
	dir, file := cgroupV2(), "memory.max"
	if dir == "" {
		dir, file = cgroupV1(), "memory.limit_in_bytes"
	}
	if dir == "" {
		testenv.Missing(t, "a writable memory cgroup (cgroup v2 with the memory controller, or v1 /sys/fs/cgroup/memory)")
	}
	cg := filepath.Join(dir, fmt.Sprintf("initos-luks-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		testenv.Missing(t, "a writable memory cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	if err := os.WriteFile(filepath.Join(cg, file), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		t.Fatalf("set %s: %v", file, err)
	}
	return []string{"sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, cg}
}

// cgroupV2 returns the cgroup v2 root if it has the memory controller.
func cgroupV2() string {
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control")
	if err != nil || !strings.Contains(string(b), "memory") {
		return ""
	}
	return "/sys/fs/cgroup"
}

// cgroupV1 returns this process's cgroup v1 memory directory.
func cgroupV1() string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			dir := filepath.Join("/sys/fs/cgroup/memory", parts[2])
			if _, err := os.Stat(filepath.Join(dir, "memory.limit_in_bytes")); err == nil {
				return dir
			}
		}
	}
	return ""
}

// TestLuksFormatMemoryLimit reproduces issue 11: a format OOM-killed under
// a memory cgroup left the device with zeroed headers and no LUKS at all.
// A format whose argon2 needs 512 MiB is run over an existing volume in a
// 256 MiB cgroup: it is OOM-killed and the old volume still opens. In a
// cgroup of 1.05 x 512 MiB (plus the 20 MiB image's page cache) the format
// succeeds. (prlimit --as does not
// work for this: the Go runtime reserves address space in amounts that
// vary from run to run.)
func TestLuksFormatMemoryLimit(t *testing.T) {
	const mem = 512 << 10 // KiB
	bin := buildCLI(t)
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("old"), img}, luksFast...)...)
	format := func(mem int) []string {
		return append([]string{bin, "luks", "format", "--force", "--key-file", key("new")}, append(argon2Flags(mem), img)...)
	}
	cmd := append(memoryCgroup(t, 256<<20), format(mem)...)
	r := runProc(t, cmd[0], cmd[1:]...)
	if r.status == 0 || !unlocks(t, img, "old") || unlocks(t, img, "new") {
		t.Errorf("format in a 256 MiB cgroup: exit %d (%s); the old volume opens %v (want true), the new one %v (want false)", r.status, r.stderr, unlocks(t, img, "old"), unlocks(t, img, "new"))
	}
	// The cgroup is also charged for the image's page cache (not
	// reclaimable when the temporary directory is a tmpfs): 20 MiB more.
	cmd = append(memoryCgroup(t, mem*1024*105/100+20<<20), format(mem)...)
	if r := runProc(t, cmd[0], cmd[1:]...); r.status != 0 || !unlocks(t, img, "new") {
		t.Errorf("format in a cgroup of 1.05 x the argon2 memory: exit %d (%s), new volume opens %v", r.status, r.stderr, unlocks(t, img, "new"))
	}
}

// TestLuksDefaultCalibration reproduces issue 11: the default format kept
// 1 GiB and t=4 whatever --iter-time said (unlock took 6.2 s for a 2 s
// target). A default format is calibrated like cryptsetup's, so unlocking
// takes the 2 s target within +-50%. Measured as the unlocking process's
// CPU time divided by the lanes that run at once: the machine running the
// tests is shared, and wall time there depends on the other load (the
// calibration measures CPU time for the same reason).
func TestLuksDefaultCalibration(t *testing.T) {
	bin := buildCLI(t)
	img, key := luksFiles(t)
	if r := runProc(t, bin, "luks", "format", "--key-file", key("k"), img); r.status != 0 {
		t.Fatalf("initos luks format (default PBKDF): exit %d: %s", r.status, r.stderr)
	}
	h, err := luks2.ReadHeaderFile(img)
	if err != nil {
		t.Fatal(err)
	}
	k := h.Meta.Keyslots["0"].KDF
	r := runProc(t, bin, "luks", "test-passphrase", "--key-file", key("k"), img)
	per := r.cpu / time.Duration(min(k.CPUs, runtime.NumCPU()))
	t.Logf("default format: %s time %d memory %d KiB lanes %d; unlock CPU %v = %v per lane, peak RSS %d MiB", k.Type, k.Time, k.Memory, k.CPUs, r.cpu, per, r.maxRSS>>20)
	if r.status != 0 || k.Type != "argon2id" || k.Memory > luks2.DefaultArgon2Memory || per < time.Second || per > 3*time.Second {
		t.Errorf("unlock of a default format: exit %d, %v CPU per lane, want 2 s +-50%% (%s)", r.status, per, r.stderr)
	}
}
