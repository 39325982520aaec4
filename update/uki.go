package update

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"initos/authenticode"
	"initos/initramfs"
	"initos/pecoff"
)

// configPath is where `initos initrd build` puts the signed initrd config
// in the cpio (package bootconfig's Path, without the leading slash).
const configPath = "etc/initos/initrd.json"

// Bounds of what is read from an untrusted UKI.
const (
	MaxUKISize    = 512 << 20 // a UKI is read into memory
	maxConfigSize = 64 << 10  // bootconfig.MaxSize
	maxScanned    = 1 << 30   // decompressed initrd bytes scanned for the config
)

// Config is the part of a UKI's signed initrd config (bootconfig) that
// upgrades use: mode, security version, build id, kernel, modules image.
type Config struct {
	Mode            string       `json:"mode"`
	SecurityVersion uint64       `json:"security_version"`
	BuildID         string       `json:"build_id,omitempty"`
	Kernel          string       `json:"kernel,omitempty"`
	ModulesImage    ModulesImage `json:"modules_image"`
}

// ModulesImage is the config's description of the modules image on the
// ESP: a squashfs with its dm-verity tree appended at HashOffset.
type ModulesImage struct {
	File          string `json:"file,omitempty"`
	RootHash      string `json:"root_hash,omitempty"`
	Salt          string `json:"salt,omitempty"`
	HashAlgorithm string `json:"hash_algorithm,omitempty"`
	DataSize      int64  `json:"data_size,omitempty"`
	HashOffset    int64  `json:"hash_offset,omitempty"`
}

// UKI is what an upgrade knows about a UKI: its identity, its signer
// (when checked) and its signed config.
type UKI struct {
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Kernel  string `json:"kernel"` // .uname, else the config's kernel
	Signer  string `json:"signer,omitempty"`
	Config  Config `json:"config"`
	Version uint64 `json:"security_version"`
	BuildID string `json:"build_id,omitempty"`
}

// UKI errors callers and tests branch on.
var (
	// ErrSignature: the UKI's Authenticode signature does not verify
	// against the firmware's db: the firmware would refuse it.
	ErrSignature = errors.New("UKI signature")
	// ErrConfig: the UKI has no usable InitOS initrd config.
	ErrConfig = errors.New("UKI config")
)

// InspectUKI parses a UKI, checks its Authenticode signature against db
// (the firmware's db certificates; nil skips the check) and reads its
// signed initrd config.
func InspectUKI(data []byte, db []*x509.Certificate) (*UKI, error) {
	img, err := pecoff.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("UKI: %w", err)
	}
	sum := sha256.Sum256(data)
	u := &UKI{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	if db != nil {
		sig, err := authenticode.Verify(img, db)
		if err != nil {
			return nil, fmt.Errorf("%w: not accepted by the firmware's db (%d certificates): %w", ErrSignature, len(db), err)
		}
		u.Signer = sig.Signer.Subject.String()
	}
	if u.Config, err = readConfig(img); err != nil {
		return nil, err
	}
	u.Kernel = strings.TrimSpace(string(bytes.TrimRight(img.Section(".uname"), "\x00")))
	if u.Kernel == "" {
		u.Kernel = u.Config.Kernel
	}
	u.Version, u.BuildID = u.Config.SecurityVersion, u.Config.BuildID
	return u, u.check()
}

// check validates what staging relies on.
func (u *UKI) check() error {
	c := u.Config
	m := c.ModulesImage
	switch {
	case c.Mode != "" && c.Mode != "boot":
		return fmt.Errorf("%w: mode %q: only a boot UKI (mode boot) can be a slot's UKI", ErrConfig, c.Mode)
	case u.Kernel == "":
		return fmt.Errorf("%w: no kernel release (.uname section or config kernel)", ErrConfig)
	case c.Kernel != "" && c.Kernel != u.Kernel:
		return fmt.Errorf("%w: config built for kernel %s, .uname says %s", ErrConfig, c.Kernel, u.Kernel)
	case m.RootHash == "":
		return nil // no modules image: every module is in the initrd
	case !cleanESPPath(m.File) || !strings.HasPrefix(m.File, ModulesDir+"/"):
		return fmt.Errorf("%w: modules image file %q is not a clean path under %s/ on the ESP", ErrConfig, m.File, ModulesDir)
	case m.DataSize <= 0 || m.DataSize%4096 != 0 || m.HashOffset < m.DataSize || m.HashOffset%4096 != 0:
		return fmt.Errorf("%w: modules image sizes: data %d, hash offset %d (want 4096-aligned, the tree after the data)", ErrConfig, m.DataSize, m.HashOffset)
	case m.HashAlgorithm != "" && m.HashAlgorithm != "sha256":
		return fmt.Errorf("%w: modules image hash %q, want sha256", ErrConfig, m.HashAlgorithm)
	}
	if b, err := hex.DecodeString(m.RootHash); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("%w: modules image root hash %q is not a hex SHA-256 digest", ErrConfig, m.RootHash)
	}
	if _, err := hex.DecodeString(m.Salt); err != nil {
		return fmt.Errorf("%w: modules image salt %q is not hex", ErrConfig, m.Salt)
	}
	return nil
}

// cleanESPPath reports whether p is a relative, clean, '/'-separated path.
func cleanESPPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.HasPrefix(p, "../") && p != ".." &&
		!strings.ContainsAny(p, "\\\x00")
}

// readConfig finds the initrd config in the UKI's .initrd section.
func readConfig(img *pecoff.Image) (Config, error) {
	sec := img.Section(".initrd")
	if len(sec) == 0 {
		return Config{}, fmt.Errorf("%w: no .initrd section", ErrConfig)
	}
	r := initramfs.NewReader(io.LimitReader(bytes.NewReader(sec), int64(len(sec))))
	for scanned := int64(0); scanned < maxScanned; {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Config{}, fmt.Errorf("%w: read the initrd: %w", ErrConfig, err)
		}
		scanned += int64(h.Size)
		if strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/") != configPath {
			continue
		}
		return parseConfig(r, int64(h.Size))
	}
	return Config{}, fmt.Errorf("%w: the initrd has no /%s: not built by `initos initrd build`", ErrConfig, configPath)
}

func parseConfig(r io.Reader, size int64) (Config, error) {
	if size > maxConfigSize {
		return Config{}, fmt.Errorf("%w: /%s is %d bytes, at most %d", ErrConfig, configPath, size, maxConfigSize)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("%w: read /%s: %w", ErrConfig, configPath, err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%w: /%s: %w", ErrConfig, configPath, err)
	}
	return c, nil
}
