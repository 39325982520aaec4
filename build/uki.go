package build

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"initos/authenticode"
	"initos/pecoff"
	"initos/uki"
)

// UKIInputs are the parts of a UKI.
type UKIInputs struct {
	Stub      []byte // systemd-stub
	Linux     []byte // the kernel's EFI image
	Initrd    []byte
	Cmdline   string
	Release   string // .uname
	OSRelease []byte // .osrel
	// PCRKey, when set, signs the PCR 11 policy for phase enter-initrd
	// (.pcrpkey and .pcrsig).
	PCRKey crypto.Signer
	// SigningKey and SigningCert, when set, sign the image for Secure Boot.
	SigningKey  crypto.Signer
	SigningCert *x509.Certificate
}

// UKI assembles and signs a UKI (uki.Build, then authenticode.Sign with
// no signing time, so that the bytes depend on the inputs only).
func UKI(in UKIInputs) (*pecoff.Image, error) {
	u := pecoff.UKI{OSRelease: in.OSRelease, Cmdline: []byte(in.Cmdline), Uname: []byte(in.Release), Linux: in.Linux, Initrd: in.Initrd}
	var pcr *uki.PCRSigning
	if in.PCRKey != nil {
		pcr = &uki.PCRSigning{Key: in.PCRKey}
	}
	img, err := uki.Build(in.Stub, u, pcr)
	if err != nil {
		return nil, fmt.Errorf("uki: %w", err)
	}
	if in.SigningKey != nil {
		if err := authenticode.Sign(img, in.SigningKey, in.SigningCert, authenticode.SignOptions{}); err != nil {
			return nil, fmt.Errorf("uki: %w", err)
		}
	}
	return img, nil
}

// epochTime is the time of SOURCE_DATE_EPOCH seconds (0: the zero time,
// which the initramfs writes as 0).
func epochTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}
