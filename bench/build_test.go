package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"initos/build"
	"initos/images/imagestest"
	"initos/initramfs"
	"initos/internal/bootdisk"
	bt "initos/internal/buildtest"
	"initos/internal/testenv"
	"initos/pecoff"
)

// buildBenchPeer is the C pipeline's first part: extract what the build
// needs from the layer (tar reads the whole stream), lay the modules and
// firmware out as initos-init reads them, mksquashfs (zstd level 3, as
// ours), veritysetup format with the tree appended, the initrd staged
// from the extracted tree (the same files as ours: init, the early
// modules, the module index, the config) and packed with cpio | zstd -19,
// everything synced. objcopy and sbsign (ukiBenchTheirs) follow.
const buildBenchPeer = `set -e
W=$1 BLOB=$2 REL=$3 INIT=$4 MODLIST=$5 CFG=$6
mkdir -p $W/x $W/s/lib $W/r/lib/modules/$REL $W/r/etc/initos $W/r/dev $W/r/proc $W/r/sys $W/r/run $W/r/tmp $W/r/sysroot
tar -x -f $BLOB -C $W/x usr/lib/modules usr/lib/firmware boot etc/os-release usr/lib/os-release
mv $W/x/usr/lib/modules $W/x/usr/lib/firmware $W/s/lib/
rm -f $W/s/lib/modules/$REL/build $W/s/lib/modules/$REL/source
mksquashfs $W/s $W/modules.sqfs -noappend -comp zstd -Xcompression-level 3 -all-root -quiet -no-progress -mkfs-time 0 -all-time 0
veritysetup format --hash-offset=$(stat -c %s $W/modules.sqfs) $W/modules.sqfs $W/modules.sqfs >$W/verity.txt
cp $INIT $W/r/init
cd $W/s/lib/modules/$REL
cp --parents $(cat $MODLIST) modules.dep modules.alias modules.softdep modules.builtin modules.builtin.modinfo $W/r/lib/modules/$REL/
cp $CFG $W/r/etc/initos/initrd.json
cd $W/r
find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet | zstd -19 -q -T1 >$W/initrd.img
sync $W/modules.sqfs $W/initrd.img
`

// BenchmarkBuild: `initos build` of the debianhost image (one layer,
// ~150 MB compressed: a 106 MB modules image, a 12 MB UKI) against the C
// pipeline doing the same job, process against process, in alternating
// order: buildBenchPeer, then objcopy --add-section with the same section
// VMAs, sbsign and sync (ukiBenchTheirs). Ours also signs a PCR 11 policy,
// which the peer does not (systemd-measure 252 needs a TPM): the
// comparison leans against us. Reported: x_peer_wall and x_peer_cpu
// (peer / ours, getrusage of the children; median, min, max) and the
// artifacts' size ratio. Use -benchtime 3x; the machine is shared.
func BenchmarkBuild(b *testing.B) {
	for _, tool := range []string{"tar", "mksquashfs", "veritysetup", "cpio", "zstd", "objcopy", "sbsign", "sync", "bash"} {
		testenv.Tool(b, tool)
	}
	src := imagestest.Build(b, "debianhost")
	dir := b.TempDir()
	cli := buildInitos(b)
	init := filepath.Join(dir, "initos-init")
	bin, err := bootdisk.InitosInit()
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(init, bin, 0o755)
	keys := filepath.Join(dir, "keys")
	bt.WriteKeys(b, keys)
	for _, f := range []string{"db.key", "db.crt"} { // the keys ukiBenchTheirs signs with
		if err := os.WriteFile(filepath.Join(keys, f), ukiBenchRead(b, filepath.Join("..", "authenticode", "testdata", f)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	ours := []string{"build", "--from-image", src, "--keys", keys, "--init", init, "--cmdline", "console=ttyS0", "--progress=false", "--json"}
	m, rd := buildBenchOnce(b, cli, append(ours, "-o", filepath.Join(dir, "ref")))
	modlist, cfg := buildBenchInitrdInputs(b, dir, m.Kernel.Release, rd)
	blob := buildBenchBlob(b, src, m)
	times := map[string][]verityTime{}
	var sizes [2]int64
	run := []func(){
		func() {
			out := filepath.Join(dir, "ours")
			os.RemoveAll(out)
			times["initos"] = append(times["initos"], verityProcess(b, cli, append(ours, "-o", out)...))
			sizes[0] = buildBenchSize(b, out)
		},
		func() {
			w := filepath.Join(dir, "peer")
			os.RemoveAll(w)
			t := verityProcess(b, "bash", "-c", buildBenchPeer, "peer", w, blob, m.Kernel.Release, init, modlist, cfg)
			in := ukiBenchFiles{stub: build.StubFor("amd64"), kernel: filepath.Join(w, "x", m.Kernel.Path), initrd: filepath.Join(w, "initrd.img"),
				cmdline: filepath.Join(w, "cmdline"), osrel: filepath.Join(w, "x", "usr", "lib", "os-release")}
			os.WriteFile(in.cmdline, []byte("console=ttyS0"), 0o644)
			ref := buildBenchLayout(b, in) // untimed: the VMAs objcopy needs
			u := ukiBenchTheirs(b, testenv.Tool(b, "objcopy"), testenv.Tool(b, "sbsign"), testenv.Tool(b, "sync"), in, ref, w)
			times["peer"] = append(times["peer"], verityTime{t.wall + u.wall, t.cpu + u.cpu})
			sizes[1] = buildBenchSize(b, filepath.Join(w, "modules.sqfs")) + buildBenchSize(b, filepath.Join(w, "objcopy.signed.efi"))
		},
	}
	for i := 0; b.Loop(); i++ {
		run[i%2]()
		run[1-i%2]()
	}
	buildBenchReport(b, times, sizes)
}

// buildBenchOnce runs our build and returns its manifest and initrd.
func buildBenchOnce(b *testing.B, cli string, args []string) (*build.Manifest, []byte) {
	out := filepath.Join(args[len(args)-1])
	if t := verityProcess(b, cli, args...); t.wall == 0 {
		b.Fatal("no time")
	}
	m, err := build.ReadManifest(filepath.Join(out, build.ManifestFile))
	if err != nil {
		b.Fatal(err)
	}
	img, err := pecoff.Parse(ukiBenchRead(b, filepath.Join(out, build.UKIFile)))
	if err != nil {
		b.Fatal(err)
	}
	return m, img.Section(".initrd")
}

// buildBenchInitrdInputs writes the list of our initrd's module files
// (relative to the module directory) and its config.
func buildBenchInitrdInputs(b *testing.B, dir, rel string, rd []byte) (modlist, cfg string) {
	r := initramfs.NewReader(bytes.NewReader(rd))
	var mods []string
	prefix := "lib/modules/" + rel + "/"
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		data, _ := io.ReadAll(r)
		switch {
		case strings.HasPrefix(h.Name, prefix) && strings.Contains(h.Name, ".ko"):
			mods = append(mods, strings.TrimPrefix(h.Name, prefix))
		case h.Name == "etc/initos/initrd.json":
			cfg = filepath.Join(dir, "initrd.json")
			os.WriteFile(cfg, data, 0o644)
		}
	}
	modlist = filepath.Join(dir, "modlist")
	os.WriteFile(modlist, []byte(strings.Join(mods, "\n")+"\n"), 0o644)
	return modlist, cfg
}

// buildBenchBlob returns the path of the image's only layer blob.
func buildBenchBlob(b *testing.B, src string, m *build.Manifest) string {
	if len(m.Source.Layers) != 1 {
		b.Fatalf("%s: %d layers, want 1", src, len(m.Source.Layers))
	}
	lay, _ := imagestest.Layout(src)
	return filepath.Join(lay, "blobs", strings.Replace(m.Source.Layers[0].Digest, ":", "/", 1))
}

// buildBenchLayout builds an unsigned UKI of the peer's inputs for its
// section VMAs.
func buildBenchLayout(b *testing.B, in ukiBenchFiles) *pecoff.Image {
	img, err := pecoff.BuildUKI(ukiBenchRead(b, in.stub), pecoff.UKI{OSRelease: ukiBenchRead(b, in.osrel),
		Cmdline: ukiBenchRead(b, in.cmdline), Initrd: ukiBenchRead(b, in.initrd), Linux: ukiBenchRead(b, in.kernel)})
	if err != nil {
		b.Fatal(err)
	}
	return img
}

// buildBenchSize is the size of a file, or of the files in a directory
// (the manifest excluded).
func buildBenchSize(b *testing.B, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	if !fi.IsDir() {
		return fi.Size()
	}
	var n int64
	for _, f := range []string{build.UKIFile} {
		n += buildBenchSize(b, filepath.Join(p, f))
	}
	ents, _ := filepath.Glob(filepath.Join(p, "modules-*.sqfs"))
	for _, e := range ents {
		n += buildBenchSize(b, e)
	}
	return n
}

func buildBenchReport(b *testing.B, times map[string][]verityTime, sizes [2]int64) {
	ratios := map[string][]float64{}
	for i, ours := range times["initos"] {
		peer := times["peer"][i]
		ratios["x_peer_wall"] = append(ratios["x_peer_wall"], peer.wall.Seconds()/ours.wall.Seconds())
		ratios["x_peer_cpu"] = append(ratios["x_peer_cpu"], peer.cpu.Seconds()/ours.cpu.Seconds())
		b.Logf("iteration %d: initos build %v (cpu %v), C pipeline %v (cpu %v)", i, ours.wall.Round(1e7), ours.cpu.Round(1e7), peer.wall.Round(1e7), peer.cpu.Round(1e7))
	}
	for name, rs := range ratios {
		slices.Sort(rs)
		b.ReportMetric(rs[len(rs)/2], name)
		b.ReportMetric(rs[0], name+"_min")
		b.ReportMetric(rs[len(rs)-1], name+"_max")
	}
	b.ReportMetric(float64(sizes[0])/float64(sizes[1]), "size_vs_peer")
	js, _ := json.Marshal(sizes)
	b.Logf("artifact bytes (ours, peer): %s; machine load %s", js, verityLoad())
}
