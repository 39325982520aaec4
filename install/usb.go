package install

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"initos/internal/atomicfile"
	"initos/pecoff"
)

// USB installer image layout: GPT partition 1 "InitOS installer" (an ESP)
// and partition 2 "InitOS recovery" (the recovery root: a squashfs with
// its verity tree appended), when given.
const (
	NameUSBESP      = "InitOS installer"
	NameUSBRecovery = "InitOS recovery"
	// TypeLinuxData is the partition type of the recovery image.
	TypeLinuxData = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	// USBConfigPath is where the install config lives on the USB ESP; the
	// paths in it are relative to its directory, and the files it names
	// are under USBPayloadDir.
	USBConfigPath = "/initos/install.json"
	USBPayloadDir = "/initos/payload"
	// InstallModeArg must be on the installer UKI's command line.
	InstallModeArg = "initos.mode=install"
)

// USBOptions describe an installer disk image.
type USBOptions struct {
	// UKI is the installer UKI: initos-init with initos.mode=install in its
	// signed command line. It becomes EFI/BOOT/BOOTX64.EFI (BOOTAA64.EFI).
	UKI string
	// Config is the unattended install, paths resolved (LoadConfig); every
	// local file it names is copied under /initos/payload and the config
	// rewritten to name the copies. Nil: no config (the installer gives a
	// root shell).
	Config *Config
	// Recovery is the recovery root: a squashfs with its verity tree
	// appended, written as partition 2. Empty: no partition 2.
	Recovery string
	// ESPSize is the ESP's size; 0 fits the payload.
	ESPSize Size
}

// USBImage describes the image BuildUSB wrote.
type USBImage struct {
	Path     string    `json:"path"`
	Size     Size      `json:"size"`
	Layout   *Layout   `json:"layout"`
	Files    []USBFile `json:"files"`
	Recovery string    `json:"recovery_sha256,omitempty"`
}

// USBFile is one file on the USB ESP.
type USBFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// usbPayload collects the ESP files: the loader, the config, and the
// files the config names (rewritten to their copies).
func usbPayload(o *USBOptions) ([]ESPFile, []byte, error) {
	arch, err := installerArch(o.UKI)
	if err != nil {
		return nil, nil, err
	}
	files := []ESPFile{{Path: "/EFI/BOOT/BOOT" + arch + ".EFI", Src: o.UKI}}
	var cfgJSON []byte
	if o.Config != nil {
		c := *o.Config
		p := &payload{}
		for _, ref := range []*string{&c.UKI, &c.Modules, &c.Artifacts, &c.SecureBoot.Keys, &c.SecureBoot.DBCert, &c.TPM.PublicKey} {
			if err := p.add(ref); err != nil {
				return nil, nil, err
			}
		}
		if err := p.addImage(&c.Image); err != nil {
			return nil, nil, err
		}
		if cfgJSON, err = json.MarshalIndent(&c, "", "  "); err != nil {
			return nil, nil, err
		}
		files = append(files, p.files...)
		files = append(files, ESPFile{Path: USBConfigPath, Data: append(cfgJSON, '\n')})
	}
	for i := range files {
		if err := statFile(&files[i]); err != nil {
			return nil, nil, err
		}
	}
	return files, cfgJSON, nil
}

// installerArch checks the installer UKI's command line and returns its
// loader suffix.
func installerArch(uki string) (string, error) {
	b, err := os.ReadFile(uki)
	if err != nil {
		return "", fmt.Errorf("installer UKI: %w", err)
	}
	img, err := pecoff.Parse(b)
	if err != nil {
		return "", fmt.Errorf("installer UKI %s: %w", uki, err)
	}
	if !strings.Contains(" "+string(img.Section(".cmdline"))+" ", " "+InstallModeArg+" ") {
		return "", fmt.Errorf("installer UKI %s: its command line %q lacks %s", uki, strings.TrimSpace(string(img.Section(".cmdline"))), InstallModeArg)
	}
	return ukiArch(b)
}

// payload copies config files under USBPayloadDir.
type payload struct {
	files []ESPFile
	names map[string]bool
}

// add copies the file or directory *ref and points *ref at the copy
// (relative to the config's directory).
func (p *payload) add(ref *string) error {
	if *ref == "" {
		return nil
	}
	src := *ref
	name := p.unique(filepath.Base(src))
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("install config: %w", err)
	}
	dst := path.Join(USBPayloadDir, name)
	if !st.IsDir() {
		p.files = append(p.files, ESPFile{Path: dst, Src: src})
	} else if err := p.addDir(src, dst); err != nil {
		return err
	}
	*ref = path.Join(path.Base(USBPayloadDir), name)
	return nil
}

// addImage copies an oci: layout or a docker-archive: file; a registry
// reference stays as it is (the installer pulls it).
func (p *payload) addImage(ref *string) error {
	for _, prefix := range []string{"oci:", "docker-archive:"} {
		if rest, ok := strings.CutPrefix(*ref, prefix); ok {
			file, tag, _ := strings.Cut(rest, ":")
			if err := p.add(&file); err != nil {
				return err
			}
			*ref = prefix + file
			if tag != "" {
				*ref += ":" + tag
			}
		}
	}
	return nil
}

func (p *payload) unique(name string) string {
	if p.names == nil {
		p.names = map[string]bool{}
	}
	base, n := name, 1
	for p.names[name] {
		n++
		name = fmt.Sprintf("%s-%d", base, n)
	}
	p.names[name] = true
	return name
}

// addDir adds the regular files under dir, sorted.
func (p *payload) addDir(dir, dst string) error {
	var found []ESPFile
	err := filepath.WalkDir(dir, func(f string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, f)
		found = append(found, ESPFile{Path: path.Join(dst, filepath.ToSlash(rel)), Src: f})
		return nil
	})
	sort.Slice(found, func(i, j int) bool { return found[i].Path < found[j].Path })
	p.files = append(p.files, found...)
	return err
}

// statFile fills in the size and SHA-256 of a payload file.
func statFile(f *ESPFile) error {
	if f.Src == "" {
		f.Size, f.Sum = int64(len(f.Data)), sha256.Sum256(f.Data)
		return nil
	}
	var err error
	if f.Size, f.Sum, err = sumFile(f.Src); err != nil {
		return err
	}
	if f.Size >= 4<<30 {
		return fmt.Errorf("%s: %s is over FAT32's 4 GiB file limit", f.Src, Size(f.Size).Human())
	}
	return nil
}

// sumFile returns the size and SHA-256 of a file.
func sumFile(path string) (int64, [32]byte, error) {
	src, err := os.Open(path)
	if err != nil {
		return 0, [32]byte{}, err
	}
	defer src.Close()
	h := sha256.New()
	n, err := io.Copy(h, src)
	return n, [32]byte(h.Sum(nil)), err
}

// BuildUSB writes the installer disk image to out (atomically).
func BuildUSB(out string, o USBOptions) (*USBImage, error) {
	files, cfgJSON, err := usbPayload(&o)
	if err != nil {
		return nil, fmt.Errorf("usb build: %w", err)
	}
	w, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return nil, fmt.Errorf("usb build: %w", err)
	}
	defer w.Abort()
	img, err := writeUSB(w.File, out, o, files, cfgJSON)
	if err != nil {
		return nil, fmt.Errorf("usb build: %w", err)
	}
	if err := w.Commit(); err != nil {
		return nil, fmt.Errorf("usb build: %w", err)
	}
	return img, nil
}
