package update

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"initos/efivar"
)

// dbCerts are the certificates of the firmware's db: what Secure Boot
// accepts UKIs from.
type dbCerts struct {
	certs []*x509.Certificate
}

// dbCerts reads the db variable. A firmware without db certificates
// (setup mode, or no Secure Boot) gives nothing to check a signature
// against: staging refuses, since it cannot know whether the firmware
// would boot the UKI.
func (s *System) dbCerts() (dbCerts, error) {
	st, err := efivar.ReadStatus(s.Vars)
	if err != nil {
		return dbCerts{}, fmt.Errorf("read the firmware's db: %w", err)
	}
	if len(st.DB) == 0 {
		return dbCerts{}, fmt.Errorf("%w: the firmware's db holds no X.509 certificate (setup mode %d, Secure Boot %d): nothing to verify the UKI against",
			ErrSignature, st.SetupMode, st.SecureBoot)
	}
	return dbCerts{certs: st.DB}, nil
}

// writeESP stages one ESP mounted at dir: clean it, then the modules
// image (from the source, or copied from the first ESP staged), then the
// UKI at EFI/Linux/initos.efi and at the removable-media path. Files
// already there byte for byte (a rerun after a power cut) are kept.
func (st *stager) writeESP(ctx context.Context, esp ESP, dir, first string) (ESPResult, error) {
	r := ESPResult{Device: esp.Device, PartUUID: esp.PartUUID}
	m := st.u.Config.ModulesImage
	if err := cleanESP(dir, m.File); err != nil {
		return r, err
	}
	if m.RootHash != "" {
		f, err := st.writeModules(ctx, dir, first, m)
		if err != nil {
			return r, err
		}
		r.Files = append(r.Files, f)
	}
	for _, rel := range []string{UKIPath, fallbackPath(st.uki)} {
		f := FileResult{Path: rel, Bytes: int64(len(st.uki))}
		if !sameFile(dir, rel, st.uki) {
			total := int64(len(st.uki))
			if err := writeFile(ctx, dir, rel, bytes.NewReader(st.uki), st.counter("write "+rel, total)); err != nil {
				return r, err
			}
			f.Written = true
			st.res.BytesWritten += f.Bytes
		}
		r.Files = append(r.Files, f)
	}
	st.sys.logf("stage: %s (slot %s): %s", esp.Device, esp.Slot, describeFiles(r.Files))
	return r, nil
}

// writeModules writes the modules image unless a file there already
// matches the config's root hash.
func (st *stager) writeModules(ctx context.Context, dir, first string, m ModulesImage) (FileResult, error) {
	f := FileResult{Path: m.File}
	if fi, ok := verifiedModules(dir, m); ok {
		f.Bytes = fi
		return f, nil
	}
	var src io.ReadCloser
	var size int64
	if first != "" {
		file, err := openBack(first, m.File)
		if err != nil {
			return f, err
		}
		fi, _ := file.Stat()
		src, size = file, fi.Size()
	} else {
		a, err := st.src.Modules(ctx, m.File)
		if err != nil {
			return f, err
		}
		if src, err = a.Open(ctx); err != nil {
			return f, err
		}
		size = a.Size
	}
	defer src.Close()
	n := int64(0)
	count := st.counter("write "+m.File, size)
	err := writeFile(ctx, dir, m.File, src, func(k int64) { n += k; count(k) })
	if err != nil {
		return f, err
	}
	f.Bytes, f.Written = n, true
	st.res.BytesWritten += n
	return f, nil
}

// verifiedModules reports whether dir holds a modules image matching m
// (and its size).
func verifiedModules(dir string, m ModulesImage) (int64, bool) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(m.File)))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || VerifyModules(f, m) != nil {
		return 0, false
	}
	return fi.Size(), true
}

// verifyESP reads the slot's files back from the disk: the UKI must be
// the bytes staged, accepted by the db, with the same config; the
// modules image must hash to the config's root hash.
func (st *stager) verifyESP(esp ESP, dir string) error {
	for _, rel := range []string{UKIPath, fallbackPath(st.uki)} {
		b, err := readBack(dir, rel, MaxUKISize)
		if err != nil {
			return fmt.Errorf("read back %s: %w", rel, err)
		}
		if !bytes.Equal(b, st.uki) {
			return fmt.Errorf("read back %s: %d bytes differ from the %d staged", rel, len(b), len(st.uki))
		}
		if _, err := InspectUKI(b, st.db.certs); err != nil {
			return fmt.Errorf("read back %s: %w", rel, err)
		}
	}
	m := st.u.Config.ModulesImage
	if m.RootHash == "" {
		return nil
	}
	f, err := openBack(dir, m.File)
	if err != nil {
		return fmt.Errorf("read back %s: %w", m.File, err)
	}
	defer f.Close()
	st.progress("verify "+m.File, 0, 0)
	return VerifyModules(f, m)
}

// counter returns a progress counter for one file.
func (st *stager) counter(step string, total int64) func(int64) {
	done := int64(0)
	return func(n int64) {
		done += n
		st.progress(step, done, total)
	}
}

func describeFiles(fs []FileResult) string {
	var b bytes.Buffer
	for i, f := range fs {
		if i > 0 {
			b.WriteString(", ")
		}
		state := "written"
		if !f.Written {
			state = "already there"
		}
		fmt.Fprintf(&b, "%s %d bytes %s", f.Path, f.Bytes, state)
	}
	return b.String()
}
