package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"initos/authenticode"
	"initos/pecoff"
)

// ukiReport is what `uki inspect --json` prints.
type ukiReport struct {
	Size         int                  `json:"size"`
	CheckSum     string               `json:"checksum"`
	CheckSumOK   bool                 `json:"checksum_ok"`
	Authenticode string               `json:"authenticode_sha256"`
	Sections     []ukiSectionReport   `json:"sections"`
	Signatures   []ukiSignatureReport `json:"signatures"`
	// SignatureNote is set when the certificate table itself is unreadable.
	SignatureNote string `json:"signature_error,omitempty"`
}

type ukiSectionReport struct {
	Name           string `json:"name"`
	VirtualAddress uint32 `json:"rva"`
	VirtualSize    uint32 `json:"virtual_size"`
	Offset         uint32 `json:"offset"`
	RawSize        uint32 `json:"raw_size"`
	SHA256         string `json:"sha256"`
}

// ukiSignatureReport is one entry of the certificate table (Entry set) or
// a signature nested in one (Entry -1).
type ukiSignatureReport struct {
	Entry        int                  `json:"entry"`
	Revision     uint16               `json:"revision,omitempty"`
	Type         uint16               `json:"type,omitempty"`
	Length       int                  `json:"length,omitempty"`
	Error        string               `json:"error,omitempty"` // the entry does not decode
	Subject      string               `json:"subject,omitempty"`
	Issuer       string               `json:"issuer,omitempty"`
	Serial       string               `json:"serial,omitempty"`
	Digest       string               `json:"digest,omitempty"`
	DigestAlg    string               `json:"digest_algorithm,omitempty"`
	DigestOK     bool                 `json:"digest_matches"`
	SigningTime  string               `json:"signing_time,omitempty"`
	Verify       string               `json:"verify,omitempty"` // uki verify: "ok" or why not
	Nested       []ukiSignatureReport `json:"nested,omitempty"`
	NestedErrors []string             `json:"nested_errors,omitempty"`
}

func init() {
	describe("uki inspect", "[--json] FILE",
		"Lists the sections of a PE image (a UKI, a stub, a signed kernel): RVA, sizes, file offset and SHA-256 of the contents; the PE checksum and the Authenticode SHA-256 of the image; and each entry of the certificate table with its signer, digest algorithm and whether its digest matches the image, including signatures nested in it (osslsigncode -nest). Exits 1 when an entry cannot be decoded, after printing it.")
	describe("uki verify", "--cert CERTS [--json] FILE",
		"Checks FILE's Authenticode signatures as UEFI firmware does with the db: it passes when one entry of the certificate table covers the image as it is and is signed by a certificate of CERTS or one it issued. CERTS is a PEM bundle, one DER certificate, an EFI signature list (db.esl from keys create) or an efivarfs db variable. Signatures nested in an entry are checked and reported but, as for firmware, do not count. Exits 1 when no entry passes.")
}

func ukiInspect(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("uki inspect", stdout, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	img, err := ukiRead(pos[0])
	if err != nil {
		return fmt.Errorf("uki inspect: %w", err)
	}
	rep, err := ukiInspectImage(img)
	if err != nil {
		return fmt.Errorf("uki inspect: %w", err)
	}
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		ukiPrintReport(stdout, rep)
	}
	if bad := rep.undecoded(); len(bad) > 0 {
		return &exitError{1, fmt.Errorf("uki inspect: %s: %s", pos[0], strings.Join(bad, "; "))}
	}
	return nil
}

// undecoded lists the certificate table problems inspect exits 1 for.
func (r *ukiReport) undecoded() []string {
	var bad []string
	if r.SignatureNote != "" {
		bad = append(bad, r.SignatureNote)
	}
	for _, s := range r.Signatures {
		if s.Error != "" {
			bad = append(bad, fmt.Sprintf("signature %d: %s", s.Entry, s.Error))
		}
	}
	return bad
}

func ukiInspectImage(img *pecoff.Image) (*ukiReport, error) {
	digest, err := authenticode.Hash(img, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	rep := &ukiReport{
		Size: len(img.Bytes()), CheckSum: fmt.Sprintf("%#08x", img.CheckSum()),
		CheckSumOK: img.CheckSum() == img.ComputeCheckSum(), Authenticode: hex.EncodeToString(digest),
		Sections: []ukiSectionReport{}, Signatures: []ukiSignatureReport{},
	}
	for _, s := range img.Sections() {
		sum := sha256.Sum256(img.Section(s.Name))
		rep.Sections = append(rep.Sections, ukiSectionReport{s.Name, s.VirtualAddress, s.VirtualSize, s.Offset, s.Size, hex.EncodeToString(sum[:])})
	}
	entries, err := authenticode.Entries(img)
	if err != nil {
		rep.SignatureNote = err.Error()
	}
	for _, e := range entries {
		rep.Signatures = append(rep.Signatures, ukiEntryReport(img, e))
	}
	return rep, nil
}

func ukiEntryReport(img *pecoff.Image, e authenticode.Entry) ukiSignatureReport {
	r := ukiSignatureReport{Entry: e.Index}
	if e.Signature != nil {
		r = ukiSignatureFor(img, *e.Signature)
		r.Entry = e.Index
	}
	r.Revision, r.Type, r.Length = e.Revision, e.Type, e.Length
	if e.Err != nil {
		r.Error = e.Err.Error()
	}
	return r
}

func ukiSignatureFor(img *pecoff.Image, s authenticode.Signature) ukiSignatureReport {
	d, err := authenticode.Hash(img, s.DigestAlgorithm)
	r := ukiSignatureReport{
		Entry:   -1,
		Subject: s.Signer.Subject.String(), Issuer: s.Signer.Issuer.String(), Serial: s.Signer.SerialNumber.String(),
		Digest: hex.EncodeToString(s.Digest), DigestAlg: s.DigestAlgorithm.String(),
		DigestOK: err == nil && bytes.Equal(d, s.Digest),
	}
	if !s.SigningTime.IsZero() {
		r.SigningTime = s.SigningTime.UTC().Format(time.RFC3339)
	}
	for _, n := range s.Nested {
		r.Nested = append(r.Nested, ukiSignatureFor(img, n))
	}
	for _, e := range s.NestedErrors {
		r.NestedErrors = append(r.NestedErrors, e.Error())
	}
	return r
}

func ukiPrintReport(w io.Writer, r *ukiReport) {
	fmt.Fprintf(w, "size %d, checksum %s (ok: %v), authenticode sha256 %s\n", r.Size, r.CheckSum, r.CheckSumOK, r.Authenticode)
	fmt.Fprintf(w, "%-9s %10s %10s %10s %10s  %s\n", "SECTION", "RVA", "VSIZE", "OFFSET", "RAWSIZE", "SHA256")
	for _, s := range r.Sections {
		fmt.Fprintf(w, "%-9s %#10x %10d %#10x %10d  %s\n", s.Name, s.VirtualAddress, s.VirtualSize, s.Offset, s.RawSize, s.SHA256)
	}
	if r.SignatureNote != "" {
		fmt.Fprintf(w, "signatures: %s\n", r.SignatureNote)
	}
	if len(r.Signatures) == 0 && r.SignatureNote == "" {
		fmt.Fprintln(w, "signatures: none")
	}
	for _, s := range r.Signatures {
		ukiPrintSignature(w, fmt.Sprintf("signature %d", s.Entry), s)
	}
}

// ukiPrintSignature prints one signature line, then its nested ones
// indented and named "signature 0.1".
func ukiPrintSignature(w io.Writer, name string, s ukiSignatureReport) {
	indent := strings.Repeat("  ", strings.Count(name, "."))
	if s.Error != "" {
		fmt.Fprintf(w, "%s%s: revision %#04x type %#04x, %d bytes: cannot decode: %s\n", indent, name, s.Revision, s.Type, s.Length, s.Error)
		return
	}
	line := fmt.Sprintf("%s%s: subject %q issuer %q serial %s %s %s (matches image: %v)",
		indent, name, s.Subject, s.Issuer, s.Serial, s.DigestAlg, s.Digest, s.DigestOK)
	if s.Verify != "" {
		line += ": " + s.Verify
	}
	fmt.Fprintln(w, line)
	for i, n := range s.Nested {
		ukiPrintSignature(w, fmt.Sprintf("%s.%d", name, i), n)
	}
	for _, e := range s.NestedErrors {
		fmt.Fprintf(w, "%s  %s: %s\n", indent, name, e)
	}
}

// ukiVerifyReport is what `uki verify --json` prints.
type ukiVerifyReport struct {
	File       string               `json:"file"`
	OK         bool                 `json:"ok"`
	Signer     string               `json:"signer,omitempty"`
	Error      string               `json:"error,omitempty"`
	Signatures []ukiSignatureReport `json:"signatures"`
}

func ukiVerify(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("uki verify", stdout, stderr)
	certPath := fs.String("cert", "", "trusted `CERTIFICATES`: PEM bundle, one DER, or an EFI signature list (db.esl, efivarfs db)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *certPath == "" {
		return usageError(fs, "--cert is required")
	}
	trusted, err := ukiLoadTrusted(*certPath)
	if err != nil {
		return fmt.Errorf("uki verify: %w", err)
	}
	img, err := ukiRead(pos[0])
	if err != nil {
		return fmt.Errorf("uki verify: %w", err)
	}
	rep := ukiVerifyImage(pos[0], img, trusted)
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else if rep.OK {
		fmt.Fprintf(stdout, "%s: OK, signed by %q\n", pos[0], rep.Signer)
		for _, s := range rep.Signatures {
			for i, n := range s.Nested {
				ukiPrintSignature(stdout, fmt.Sprintf("nested signature %d.%d", s.Entry, i), n)
			}
		}
	}
	if !rep.OK {
		return &exitError{1, fmt.Errorf("uki verify: %s: %s", pos[0], rep.Error)}
	}
	return nil
}

// ukiVerifyImage checks img like firmware (authenticode.Verify) and each
// signature, nested ones included, on its own for the report.
func ukiVerifyImage(path string, img *pecoff.Image, trusted []*x509.Certificate) *ukiVerifyReport {
	rep := &ukiVerifyReport{File: path, Signatures: []ukiSignatureReport{}}
	sig, err := authenticode.Verify(img, trusted)
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.OK, rep.Signer = true, sig.Signer.Subject.String()
	}
	entries, _ := authenticode.Entries(img)
	for _, e := range entries {
		r := ukiEntryReport(img, e)
		if e.Signature != nil {
			ukiVerifyStatus(&r, img, *e.Signature, trusted)
		}
		rep.Signatures = append(rep.Signatures, r)
	}
	return rep
}

func ukiVerifyStatus(r *ukiSignatureReport, img *pecoff.Image, s authenticode.Signature, trusted []*x509.Certificate) {
	r.Verify = "ok"
	if err := s.Verify(img, trusted); err != nil {
		r.Verify = err.Error()
	}
	for i := range r.Nested {
		ukiVerifyStatus(&r.Nested[i], img, s.Nested[i], trusted)
	}
}
