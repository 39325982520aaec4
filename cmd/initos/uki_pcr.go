package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"initos/pecoff"
	"initos/tpm2"
	"initos/uki"
)

// `uki build` flags for signed PCR 11 policies, as ukify's: the build
// embeds .pcrpkey and a .pcrsig signed with --pcr-private-key.
func init() { ukiBuildHook = ukiPCRFlags }

type ukiPCROptions struct {
	privateKey, publicKey, banks, phases string
}

func ukiPCRFlags(fs *flag.FlagSet, stdout io.Writer) func([]byte, pecoff.UKI) (*pecoff.Image, error) {
	var o ukiPCROptions
	fs.StringVar(&o.privateKey, "pcr-private-key", "", "sign PCR 11 with this PEM RSA `KEY` (embeds .pcrpkey and .pcrsig)")
	fs.StringVar(&o.publicKey, "pcr-public-key", "", "PEM public `KEY` for .pcrpkey (default: derived from --pcr-private-key)")
	fs.StringVar(&o.banks, "pcr-banks", "sha256", "PCR `BANKS` to sign for, comma-separated (sha256 only)")
	fs.StringVar(&o.phases, "phases", "enter-initrd", "phase `PATHS` to sign, comma/space-separated, words joined by ':' (':' = at boot, before any phase); the default is what initos-init unseals against, in the initrd only")
	return func(stub []byte, u pecoff.UKI) (*pecoff.Image, error) {
		s, err := o.signing(fs)
		if err != nil {
			return nil, err
		}
		if s == nil {
			return pecoff.BuildUKI(stub, u)
		}
		if len(u.PCRSig) != 0 {
			return nil, usageError(fs, "--pcrsig and --pcr-private-key exclude each other")
		}
		img, err := uki.Build(stub, u, s)
		if err != nil {
			return nil, err
		}
		return img, ukiPrintPCR11(stdout, img, s.Phases)
	}
}

// signing turns the flags into a PCRSigning, or nil without a private key
// (then pecoff.BuildUKI builds the image as before).
func (o *ukiPCROptions) signing(fs *flag.FlagSet) (*uki.PCRSigning, error) {
	if o.privateKey == "" {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			if strings.HasPrefix(f.Name, "pcr-") || f.Name == "phases" {
				set = append(set, "--"+f.Name)
			}
		})
		if len(set) > 0 {
			return nil, usageError(fs, "%s need --pcr-private-key", strings.Join(set, " "))
		}
		return nil, nil
	}
	key, err := readSigner(o.privateKey)
	if err != nil {
		return nil, err
	}
	s := &uki.PCRSigning{Key: key}
	if o.publicKey != "" {
		if s.PublicKey, err = os.ReadFile(o.publicKey); err != nil {
			return nil, err
		}
	}
	for _, name := range strings.Split(o.banks, ",") {
		b, err := tpm2.ParseBank(strings.TrimSpace(name))
		if err != nil {
			return nil, usageError(fs, "--pcr-banks: %v", err)
		}
		s.Banks = append(s.Banks, b)
	}
	if s.Phases, err = uki.ParsePhases(o.phases); err != nil {
		return nil, usageError(fs, "--phases: %v", err)
	}
	return s, nil
}

// ukiPrintPCR11 prints the signed PCR 11 values, as systemd-measure does.
func ukiPrintPCR11(w io.Writer, img *pecoff.Image, phases [][]string) error {
	for _, path := range phases {
		v, err := tpm2.PredictPCR11(bytes.NewReader(img.Bytes()), path...)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "11:sha256=%x # phase %q signed\n", v, strings.Join(path, ":"))
	}
	return nil
}
