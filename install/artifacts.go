package install

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"initos/authenticode"
	"initos/efivar"
	"initos/pecoff"
	"initos/verity"
)

// Artifacts are the checked boot artifacts to put on every ESP.
type Artifacts struct {
	UKIPath string `json:"uki"`
	UKISize int64  `json:"uki_size"`
	// Signer is the subject of the certificate that signed the UKI.
	Signer string `json:"signer"`
	// PCRPublicKey is the UKI's .pcrpkey section (PEM), if any.
	PCRPublicKey []byte `json:"-"`
	// Arch is the removable-media loader suffix: "X64" or "AA64".
	Arch string `json:"arch"`
	// Release is the kernel release: the UKI's .uname, or from the
	// modules image's name.
	Release string `json:"release"`

	ModulesPath string `json:"modules"`
	ModulesName string `json:"modules_name"` // modules-<release>.sqfs
	ModulesSize int64  `json:"modules_size"`
	// Verity describes the modules image's tree; its RootHash is the
	// expected one.
	Verity *verity.Result `json:"-"`
	// RootHash is Verity.RootHash in hex.
	RootHash string `json:"modules_root_hash"`

	// Trusted are the certificates the UKI was verified against.
	Trusted []*x509.Certificate `json:"-"`
}

// findArtifacts fills in the UKI and modules image paths from the
// artifacts directory when not given.
func findArtifacts(cfg *Config) (uki, modules string, err error) {
	uki, modules = cfg.UKI, cfg.Modules
	if cfg.Artifacts == "" || uki != "" && modules != "" {
		return uki, modules, nil
	}
	for _, pat := range []struct {
		dst  *string
		glob string
	}{{&uki, "*.efi"}, {&modules, "modules-*.sqfs"}} {
		if *pat.dst != "" {
			continue
		}
		m, _ := filepath.Glob(filepath.Join(cfg.Artifacts, pat.glob))
		if len(m) != 1 {
			return "", "", fmt.Errorf("artifacts %s: want exactly one %s, found %d", cfg.Artifacts, pat.glob, len(m))
		}
		*pat.dst = m[0]
	}
	return uki, modules, nil
}

// loadUKI reads the UKI, checks its Authenticode signature against
// trusted and reads what the install needs from it.
func loadUKI(path string, trusted []*x509.Certificate, a *Artifacts) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read the UKI: %w", err)
	}
	img, err := pecoff.Parse(b)
	if err != nil {
		return fmt.Errorf("UKI %s: %w", path, err)
	}
	sig, err := authenticode.Verify(img, trusted)
	if err != nil {
		return fmt.Errorf("UKI %s: signature: %w", path, err)
	}
	a.UKIPath, a.UKISize = path, int64(len(b))
	a.Signer, a.Trusted = sig.Signer.Subject.String(), trusted
	a.PCRPublicKey = img.Section(".pcrpkey")
	a.Release = strings.TrimRight(string(img.Section(".uname")), "\x00\n ")
	a.Arch, err = ukiArch(b)
	return err
}

// ukiArch reads the PE machine type: X64 for amd64, AA64 for arm64.
func ukiArch(b []byte) (string, error) {
	if len(b) < 0x40 {
		return "", fmt.Errorf("UKI: too short for a PE image")
	}
	pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if pe < 0 || pe+6 > len(b) {
		return "", fmt.Errorf("UKI: PE header offset %d out of range", pe)
	}
	switch m := binary.LittleEndian.Uint16(b[pe+4:]); m {
	case 0x8664:
		return "X64", nil
	case 0xaa64:
		return "AA64", nil
	default:
		return "", fmt.Errorf("UKI: machine type 0x%04x is neither x86-64 nor arm64", m)
	}
}

// loadModules checks the modules image: its name, its verity tree against
// the data and against the expected root hash (computed when none given).
func loadModules(path, rootHex string, a *Artifacts) error {
	name := filepath.Base(path)
	rel, ok := strings.CutPrefix(strings.TrimSuffix(name, ".sqfs"), "modules-")
	if !ok || !strings.HasSuffix(name, ".sqfs") || rel == "" {
		return fmt.Errorf("modules image %s: name is not modules-<kernel release>.sqfs", name)
	}
	if a.Release != "" && rel != a.Release {
		return fmt.Errorf("modules image %s is for kernel %s, the UKI's kernel is %s", name, rel, a.Release)
	}
	a.Release, a.ModulesPath, a.ModulesName = rel, path, name
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("modules image: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("modules image: %w", err)
	}
	a.ModulesSize = st.Size()
	root, err := expectedRoot(f, rootHex)
	if err != nil {
		return fmt.Errorf("modules image %s: %w", name, err)
	}
	if a.Verity, err = openModules(f, a.ModulesSize, root); err != nil {
		return fmt.Errorf("modules image %s: %w", name, err)
	}
	a.RootHash = a.Verity.RootHashHex()
	return nil
}

func expectedRoot(f *os.File, rootHex string) ([]byte, error) {
	if rootHex == "" {
		return nil, nil
	}
	root, err := hex.DecodeString(rootHex)
	if err != nil {
		return nil, fmt.Errorf("expected root hash %q is not hex", rootHex)
	}
	return root, nil
}

// ErrNoVerity reports a modules image without a verity tree where the
// contract puts it.
var ErrNoVerity = errors.New("no dm-verity superblock at the 4 KiB aligned end of the squashfs")

// openModules finds the verity tree of a modules image (squashfs, then
// its tree at the 4 KiB aligned end of the squashfs, with a superblock)
// and verifies data and tree against root, or against the root it
// computes from the data when root is nil.
func openModules(r io.ReaderAt, size int64, root []byte) (*verity.Result, error) {
	off, err := squashfsEnd(r)
	if err != nil {
		return nil, err
	}
	off = (off + 4095) &^ 4095
	if off >= size {
		return nil, ErrNoVerity
	}
	sb, err := verity.ReadSuperblock(r, off)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoVerity, err)
	}
	if root == nil {
		p := sb.Params()
		tree := &memDevice{}
		res, err := verity.Format(r, off, tree, 0, p)
		if err != nil {
			return nil, fmt.Errorf("compute the root hash: %w", err)
		}
		root = res.RootHash
	}
	res, err := sb.Result(off, root)
	if err != nil {
		return nil, err
	}
	if err := res.Verify(r, r); err != nil {
		return nil, err
	}
	return res, nil
}

// squashfsEnd returns bytes_used from a squashfs superblock.
func squashfsEnd(r io.ReaderAt) (int64, error) {
	var sb [96]byte
	if _, err := r.ReadAt(sb[:], 0); err != nil {
		return 0, fmt.Errorf("read the squashfs superblock: %w", err)
	}
	if !bytes.Equal(sb[:4], []byte("hsqs")) {
		return 0, fmt.Errorf("not a squashfs image (magic %q)", sb[:4])
	}
	n := binary.LittleEndian.Uint64(sb[40:])
	if n == 0 || n > 1<<50 {
		return 0, fmt.Errorf("squashfs bytes_used %d is out of range", n)
	}
	return int64(n), nil
}

// trustedCerts returns the certificates the UKI must verify against: the
// configured PEM file, else the keys directory's db.crt, else the
// firmware's db.
func trustedCerts(cfg *Config, efi efivar.Store) ([]*x509.Certificate, error) {
	path := cfg.SecureBoot.DBCert
	if path == "" && cfg.SecureBoot.Keys != "" {
		path = filepath.Join(cfg.SecureBoot.Keys, "db.crt")
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read the db certificate: %w", err)
		}
		return authenticode.ParseCertificates(b)
	}
	if efi != nil {
		if _, data, err := efi.Get("db", efivar.ImageSecurityDB); err == nil {
			if lists, err := efivar.ParseSignatureLists(data); err == nil {
				if certs, err := efivar.Certificates(lists); err == nil && len(certs) > 0 {
					return certs, nil
				}
			}
		}
	}
	return nil, errors.New("no certificate to verify the UKI against: give secure_boot.keys (db.crt) or secure_boot.db_cert, or enroll db in the firmware")
}
