package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// demo holds the work directory's paths and what the stages learn.
type demo struct {
	n        *narrator
	w        string
	release  string // the kernel release of the build
	recHash  string // the recovery root's verity root hash
	sshPort  int
	regPort  int
	cmdline  string
	ctl      []string // initos ctl --host ... (the booted host)
	vm       *vmState
	modsFile string // modules-<release>.sqfs
}

func (d *demo) p(name ...string) string { return filepath.Join(append([]string{d.w}, name...)...) }

// stageBuild is stage 1: everything the trusted build machine makes.
func (d *demo) stageBuild(ctx context.Context) error {
	n := d.n
	n.stage("1. Build machine: owner keys, the debianhost and recovery images, initos build, the USB installer")
	steps := []cmd{
		{name: "initos", args: []string{"keys", "create", "--cn", "InitOS demo owner", d.p("keys")}},
		{name: "openssl", args: []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", d.p("keys", "pcr.key")}, keep: none},
		{name: "ssh-keygen", args: []string{"-q", "-t", "ed25519", "-N", "", "-C", "owner", "-f", d.p("owner", "id_ed25519")}},
		{name: "ssh-keygen", args: []string{"-A", "-f", d.p("owner", "hostkeys")}},
		{name: "images/debianhost/build.sh", args: []string{"--out", "oci:" + d.p("images") + ":debianhost"}, keep: lastLine},
		{name: "images/recovery/build.sh", args: []string{"--out", "oci:" + d.p("images") + ":recovery"}, keep: lastLine},
	}
	if err := os.MkdirAll(d.p("owner", "hostkeys", "etc", "ssh"), 0o700); err != nil {
		return err
	}
	for _, c := range steps {
		if err := n.run(ctx, c); err != nil {
			return err
		}
	}
	files, err := ownerFiles(d.p("owner"))
	if err != nil {
		return err
	}
	n.say("the owner's layer over debianhost: root's authorized_keys (the owner's SSH key) and the host's SSH keys -> oci:$WORK/host:host")
	if err := addOwnerLayer(d.p("images"), "debianhost", d.p("host"), "host", files); err != nil {
		return fmt.Errorf("owner layer: %w", err)
	}
	// The trial's watchdog: the i6300esb's default 30 s is far shorter than
	// a boot to initos-bless.service under TCG on a shared machine
	// (minutes); real hardware boots in seconds.
	rd := `{"version": 1, "mode": "boot", "watchdog": {"device": "/dev/watchdog0", "timeout_sec": 1200}}` + "\n"
	if err := os.WriteFile(d.p("initrd.json"), []byte(rd), 0o644); err != nil {
		return err
	}
	n.say("$WORK/initrd.json: %s", strings.TrimSpace(rd))
	d.cmdline = "console=ttyS0 panic=-1 no_timer_check"
	if err := d.build(ctx, "boot1", "demo 1", 1, d.cmdline, ""); err != nil {
		return err
	}
	if err := d.recovery(ctx); err != nil {
		return err
	}
	inst := d.cmdline + " initos.mode=install initos.recovery=" + d.recHash
	if err := d.build(ctx, "installer", "demo installer", 1, inst, "initos/payload/"+d.modsFile); err != nil {
		return err
	}
	return d.usb(ctx)
}

// build runs initos build into $WORK/out.
func (d *demo) build(ctx context.Context, out, id string, version int, cmdline, modulesPath string, extra ...string) error {
	args := []string{"build", "--from-image", "oci:" + d.p("host") + ":host", "--keys", d.p("keys"), "--cmdline", cmdline,
		"--build-id", id, "--security-version", fmt.Sprint(version), "--progress=false", "-o", d.p(out)}
	if modulesPath != "" {
		args = append(args, "--modules-image-path", modulesPath)
	} else {
		args = append(args, "--initrd-config", d.p("initrd.json"))
	}
	args = append(args, extra...)
	if err := d.n.run(ctx, cmd{name: "initos", args: args, keep: buildLines}); err != nil {
		return err
	}
	b, err := os.ReadFile(d.p(out, "manifest.json"))
	if err != nil {
		return err
	}
	var m struct {
		Kernel       struct{ Release string }
		ModulesImage struct{ File string } `json:"modules_image"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s/manifest.json: %w", out, err)
	}
	d.release, d.modsFile = m.Kernel.Release, m.ModulesImage.File
	return nil
}

// buildLines are the lines of initos build's summary the demo shows.
func buildLines(l string) bool {
	for _, p := range []string{"Kernel:", "Modules image:", "UKI:", "Build id:", "Published:"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func none(string) bool { return false }

func lastLine(l string) bool { return strings.HasPrefix(l, "oci:") && !strings.Contains(l, " ") }

// recovery makes the recovery root's squashfs (with its verity tree)
// from the recovery image's one layer.
func (d *demo) recovery(ctx context.Context) error {
	p, err := layout.FromPath(d.p("images"))
	if err != nil {
		return err
	}
	img, err := imageByTag(p, "recovery")
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return fmt.Errorf("the recovery image: %d layers, %v; want one", len(layers), err)
	}
	dg, err := layers[0].Digest()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	c := cmd{name: "initos", args: []string{"sqfs", "build", "--all-root", "--verity", "--progress=false",
		d.p("images", "blobs", dg.Algorithm, dg.Hex), d.p("recovery.sqfs")}, stdout: &out,
		keep: func(l string) bool { return strings.HasPrefix(l, "Root hash:") }}
	if err := d.n.run(ctx, c); err != nil {
		return err
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if h, ok := strings.CutPrefix(l, "Root hash:"); ok {
			d.recHash = strings.TrimSpace(h)
		}
	}
	if len(d.recHash) != 64 {
		return fmt.Errorf("initos sqfs build printed no root hash:\n%s", out.String())
	}
	return nil
}

// usb writes the install config and the USB installer image.
func (d *demo) usb(ctx context.Context) error {
	enroll := d.p("enroll")
	if err := os.MkdirAll(enroll, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"PK.auth", "KEK.auth", "db.auth", "db.crt"} {
		b, err := os.ReadFile(d.p("keys", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(enroll, f), b, 0o644); err != nil {
			return err
		}
	}
	cfg := map[string]any{
		"disks": []string{"virtio-target"}, "yes": true,
		"uki": "boot1/initos.efi", "modules": "boot1/" + d.modsFile, "image": "oci:host:host",
		"secure_boot": map[string]any{"keys": "enroll"}, "esp_size": "320MiB",
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.p("install.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	d.n.say("$WORK/install.json (the stick carries the .auth updates and db.crt, never a private key):")
	for _, l := range strings.Split(string(b), "\n") {
		d.n.say("  %s", l)
	}
	return d.n.run(ctx, cmd{name: "initos", args: []string{"usb", "build", "--uki", d.p("installer", "initos.efi"),
		"--install-config", d.p("install.json"), "--recovery-sqfs", d.p("recovery.sqfs"), "-o", d.p("usb.img")}})
}

// writeLayout makes an empty OCI layout.
func writeLayout(dir string) (layout.Path, error) {
	if p, err := layout.FromPath(dir); err == nil {
		return p, nil
	}
	return layout.Write(dir, empty.Index)
}
