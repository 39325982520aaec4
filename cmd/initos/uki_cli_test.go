package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
)

// runStatus runs initos with args and returns stdout, stderr (with the
// error line main prints) and the exit status.
func runStatus(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	code = exitCode(err, &errOut)
	return out.String(), errOut.String(), code
}

// cliCase is one command with the exit status and messages it must give.
type cliCase struct {
	args       []string
	code       int
	stdout     string // substring of stdout ("" = not checked)
	stderr     string // substring of stderr ("" = not checked)
	noUsageOut bool   // stdout must not hold a usage text
}

func (c cliCase) check(t *testing.T) {
	t.Helper()
	out, errOut, code := runStatus(t, c.args...)
	if code != c.code {
		t.Errorf("initos %q: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", c.args, code, c.code, out, errOut)
	}
	if !strings.Contains(out, c.stdout) {
		t.Errorf("initos %q: stdout lacks %q:\n%s", c.args, c.stdout, out)
	}
	if !strings.Contains(errOut, c.stderr) {
		t.Errorf("initos %q: stderr lacks %q:\n%s", c.args, c.stderr, errOut)
	}
}

// badSectionPE writes the test stub with its second section emptied and
// pointed past the end of the file (issue 10: Section sliced out of range).
func badSectionPE(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(ukiTestStub)
	if err != nil {
		t.Fatal(err)
	}
	peOff := binary.LittleEndian.Uint32(b[0x3c:])
	optSize := binary.LittleEndian.Uint16(b[peOff+20:])
	sec1 := peOff + 24 + uint32(optSize) + 40
	binary.LittleEndian.PutUint32(b[sec1+16:], 0)          // SizeOfRawData
	binary.LittleEndian.PutUint32(b[sec1+20:], 0xffffff00) // PointerToRawData
	p := filepath.Join(dir, "bad.efi")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// signedWithTag builds and signs a UKI, then replaces the first byte of
// its PKCS #7 blob with tag.
func signedWithTag(t *testing.T, dir string, tag byte) string {
	t.Helper()
	out := filepath.Join(dir, "tagged.efi")
	runUKICLI(t, false, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
		"--key", ukiTestKey, "--cert", ukiTestCert, "-o", out)
	img, err := ukiRead(out)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(img.Bytes())
	off, _ := img.CertTable()
	b[off+8] = tag
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUKICLIHostileInput(t *testing.T) {
	dir := ukiTestInputs(t)
	bad := badSectionPE(t, dir)
	tagged := signedWithTag(t, dir, 0x8c)
	for _, c := range []cliCase{
		{args: []string{"uki", "inspect", bad}, code: 1,
			stderr: `uki inspect: ` + bad + `: parse PE: malformed PE image: section ".reloc" raw data pointer 0xffffff00 is outside the file`},
		{args: []string{"uki", "verify", "--cert", ukiTestCert, bad}, code: 1, stderr: "raw data pointer 0xffffff00"},
		// A malformed PE kernel is carried as opaque bytes (no .sbat merged).
		{args: []string{"uki", "build", "--stub", ukiTestStub, "--linux", bad, "-o", filepath.Join(dir, "k.efi")}, code: 0},
		{args: []string{"uki", "build", "--stub", bad, "--linux", filepath.Join(dir, "vmlinuz"), "-o", filepath.Join(dir, "s.efi")}, code: 1,
			stderr: "uki build: build UKI: stub: parse PE: malformed PE image: section \".reloc\" raw data pointer"},
		{args: []string{"uki", "inspect", tagged}, code: 1,
			stdout: "signature 0: revision 0x0200 type 0x0002, ",
			stderr: "uki inspect: " + tagged + ": signature 0: malformed PKCS #7 signature: outer element: tag 0x8c, want SEQUENCE (0x30)"},
		{args: []string{"uki", "verify", "--cert", ukiTestCert, tagged}, code: 1,
			stderr: "verify image: signature 0: malformed PKCS #7 signature: outer element: tag 0x8c"},
	} {
		c.check(t)
	}
}

func TestUKICLIUsage(t *testing.T) {
	dir := ukiTestInputs(t)
	vmlinuz := filepath.Join(dir, "vmlinuz")
	for _, c := range []cliCase{
		{args: []string{"uki", "build", "--help"}, code: 0, stdout: "usage: initos uki build --linux FILE -o OUT"},
		{args: []string{"uki", "verify", "--help"}, code: 0, stdout: "  --json"},
		{args: []string{"uki", "inspect", "-h"}, code: 0, stdout: "osslsigncode -nest"},
		{args: []string{"uki", "sign", "--help"}, code: 0, stdout: "  --key KEY"},
		{args: []string{"uki", "strip", "--help"}, code: 0, stdout: "usage: initos uki strip [-o OUT] FILE"},
		{args: []string{"uki", "build", "--stub", ukiTestStub, "-o", filepath.Join(dir, "x.efi")}, code: 2,
			stderr: "usage: initos uki build: --linux and -o are required"},
		{args: []string{"uki", "build", "--linux", vmlinuz, "-o", filepath.Join(dir, "x.efi"), "--key", ukiTestKey}, code: 2,
			stderr: "--key and --cert go together"},
		{args: []string{"uki", "sign", "--key", ukiTestKey, vmlinuz}, code: 2, stderr: "usage: initos uki sign: --key and --cert are required"},
		{args: []string{"uki", "verify", vmlinuz}, code: 2, stderr: "usage: initos uki verify: --cert is required"},
		{args: []string{"uki", "verify", "--cert"}, code: 2, stderr: "flag needs an argument: -cert"},
		{args: []string{"uki", "inspect", "--bogus", vmlinuz}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{args: []string{"uki", "inspect"}, code: 2, stderr: "wrong number of arguments (0, want 1)"},
		{args: []string{"uki", "inspect", filepath.Join(dir, "initrd")}, code: 1, stderr: "no MZ signature"},
		{args: []string{"uki", "inspect", filepath.Join(dir, "missing")}, code: 1, stderr: "no such file or directory"},
	} {
		c.check(t)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.efi")); !os.IsNotExist(err) {
		t.Errorf("a failed build left x.efi: %v", err)
	}
}

// TestUKICLIVerifyJSON: uki verify --json reports every entry, nested
// signatures included, with its own verdict; exit 1 when none passes.
func TestUKICLIVerifyJSON(t *testing.T) {
	testenv.Tool(t, "osslsigncode")
	dir := ukiTestInputs(t)
	first := filepath.Join(dir, "first.efi")
	runUKICLI(t, false, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
		"--key", ukiTestKey, "--cert", ukiTestCert, "-o", first)
	nested := filepath.Join(dir, "nested.efi")
	testenv.Run(t, "osslsigncode", "sign", "-nest", "-h", "sha384", "-certs", ukiOtherCrt,
		"-key", "../../authenticode/testdata/other.key", "-in", first, "-out", nested)
	out, _, code := runStatus(t, "uki", "verify", "--json", "--cert", ukiTestCert, nested)
	var rep ukiVerifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("uki verify --json = %d, %v:\n%s", code, err, out)
	}
	if !rep.OK || len(rep.Signatures) != 1 || rep.Signatures[0].Verify != "ok" || len(rep.Signatures[0].Nested) != 1 {
		t.Fatalf("uki verify --json = %+v, want OK with one entry holding one nested signature", rep)
	}
	if n := rep.Signatures[0].Nested[0]; n.DigestAlg != "SHA-384" || !n.DigestOK || !strings.Contains(n.Verify, "not trusted") {
		t.Errorf("nested signature report = %+v, want SHA-384, digest ok, untrusted", n)
	}
	out, _, code = runStatus(t, "uki", "verify", "--json", "--cert", ukiOtherCrt, nested)
	rep = ukiVerifyReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.OK {
		t.Fatalf("uki verify --json (nested signer only) = %d, %v, %+v; want exit 1 and ok false", code, err, rep)
	}
	if n := rep.Signatures[0].Nested[0]; n.Verify != "ok" {
		t.Errorf("nested signature verdict = %q, want ok", n.Verify)
	}
}

// TestUKICLIShim: Debian's Microsoft-signed shim verifies against the
// Microsoft UEFI CA 2011, as sbverify says.
func TestUKICLIShim(t *testing.T) {
	const shim = "/usr/lib/shim/shimx64.efi.signed"
	if _, err := os.Stat(shim); err != nil {
		testenv.Missing(t, "%s (package shim-signed): %v", shim, err)
	}
	ca := "../../authenticode/testdata/MicCorUEFCA2011_2011-06-27.crt"
	testenv.Run(t, "sbverify", "--cert", pemOf(t, ca), shim)
	cliCase{args: []string{"uki", "verify", "--cert", ca, shim}, code: 0,
		stdout: `OK, signed by "CN=Microsoft Windows UEFI Driver Publisher`}.check(t)
	cliCase{args: []string{"uki", "verify", "--cert", ukiTestCert, shim}, code: 1, stderr: "signer is not trusted"}.check(t)
	cliCase{args: []string{"uki", "inspect", shim}, code: 0, stdout: `signature 0: subject "CN=Microsoft Windows UEFI Driver Publisher`}.check(t)
}

// pemOf converts a DER certificate to a PEM file for sbverify.
func pemOf(t *testing.T, der string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cert.pem")
	testenv.Run(t, "openssl", "x509", "-inform", "der", "-in", der, "-out", p)
	return p
}

// TestUKICLIHugeFile: a file larger than a PE image can be is refused
// before it is read (a sparse 5 GiB file).
func TestUKICLIHugeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.efi")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cliCase{args: []string{"uki", "inspect", p}, code: 1, stderr: "5368709120 bytes, larger than a PE image can be (4 GiB)"}.check(t)
}
