package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/efivar"
	"initos/internal/testenv"
)

const (
	ukiTestStub = "../../pecoff/testdata/linuxx64.efi.stub"
	ukiTestKey  = "../../authenticode/testdata/db.key"
	ukiTestCert = "../../authenticode/testdata/db.crt"
	ukiOtherCrt = "../../authenticode/testdata/other.crt"
)

func runUKICLI(t *testing.T, wantErr bool, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"uki"}, args...), &stdout, &stderr)
	if (err != nil) != wantErr {
		t.Fatalf("initos uki %q = %v, want error %v\nstderr: %s", args, err, wantErr, stderr.String())
	}
	return stdout.String()
}

func ukiTestInputs(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"vmlinuz": strings.Repeat("K", 4000), "initrd": strings.Repeat("I", 3000),
		"os-release": "ID=initos\n", "cmdline": "console=ttyS0 root=/dev/vda",
		"splash.bmp": "BM" + strings.Repeat("S", 100),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestUKICLI(t *testing.T) {
	dir := ukiTestInputs(t)
	out := filepath.Join(dir, "uki.efi")
	runUKICLI(t, false, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
		"--initrd", filepath.Join(dir, "initrd"), "--cmdline", "@"+filepath.Join(dir, "cmdline"),
		"--os-release", filepath.Join(dir, "os-release"), "--uname", "6.1.0",
		"--splash", filepath.Join(dir, "splash.bmp"), "-o", out)
	runUKICLI(t, true, "verify", "--cert", ukiTestCert, out) // unsigned
	runUKICLI(t, false, "sign", "--key", ukiTestKey, "--cert", ukiTestCert, out)
	if got := runUKICLI(t, false, "verify", "--cert", ukiTestCert, out); !strings.Contains(got, "OK") {
		t.Errorf("uki verify = %q, want OK", got)
	}
	runUKICLI(t, true, "verify", "--cert", ukiOtherCrt, out)

	var rep ukiReport
	if err := json.Unmarshal([]byte(runUKICLI(t, false, "inspect", "--json", out)), &rep); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rep.Sections {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); !strings.HasSuffix(got, ".sbat .sdmagic .osrel .cmdline .uname .splash .initrd .linux") {
		t.Errorf("inspect sections = %s", got)
	}
	if len(rep.Signatures) != 1 || !rep.Signatures[0].DigestOK || !rep.CheckSumOK {
		t.Errorf("inspect = %+v, want one matching signature and a good checksum", rep)
	}
	if txt := runUKICLI(t, false, "inspect", out); !strings.Contains(txt, ".cmdline") {
		t.Errorf("inspect text output lacks .cmdline:\n%s", txt)
	}
	runUKICLI(t, false, "strip", out)
	runUKICLI(t, true, "verify", "--cert", ukiTestCert, out)
}

func TestUKICLIReproducible(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := ukiTestInputs(t)
	var outs [2][]byte
	for i := range outs {
		out := filepath.Join(dir, "uki.efi")
		runUKICLI(t, false, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
			"--cmdline", "quiet", "--key", ukiTestKey, "--cert", ukiTestCert, "-o", out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = b
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("two builds with the same SOURCE_DATE_EPOCH differ")
	}
}

func TestUKICLIErrors(t *testing.T) {
	dir := ukiTestInputs(t)
	runUKICLI(t, true, "build", "--stub", ukiTestStub, "-o", filepath.Join(dir, "x.efi")) // no --linux
	runUKICLI(t, true, "build", "--stub", filepath.Join(dir, "initrd"), "--linux", filepath.Join(dir, "vmlinuz"), "-o", filepath.Join(dir, "x.efi"))
	if _, err := os.Stat(filepath.Join(dir, "x.efi")); !os.IsNotExist(err) {
		t.Errorf("failed build left an output file: %v", err)
	}
	runUKICLI(t, true, "sign", "--key", ukiTestKey, filepath.Join(dir, "vmlinuz")) // no --cert
	runUKICLI(t, true, "inspect", filepath.Join(dir, "initrd"))                    // not a PE
}

// TestUKICLISbverify: the oracle accepts what `initos uki build --key` signs.
func TestUKICLISbverify(t *testing.T) {
	testenv.Tool(t, "sbverify")
	dir := ukiTestInputs(t)
	out := filepath.Join(dir, "uki.efi")
	runUKICLI(t, false, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
		"--cmdline", "quiet", "--key", ukiTestKey, "--cert", ukiTestCert, "-o", out)
	testenv.Run(t, "sbverify", "--cert", ukiTestCert, out)
}

// TestUKICLIVerifyDB: "uki verify --cert" also takes the db as an EFI
// signature list, bare (db.esl of "keys create") or as an efivarfs file
// (4 attribute bytes first).
func TestUKICLIVerifyDB(t *testing.T) {
	dir := ukiTestInputs(t)
	out := filepath.Join(dir, "uki.efi")
	runUKICLI(t, false, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
		"--cmdline", "quiet", "--key", ukiTestKey, "--cert", ukiTestCert, "-o", out)
	esl := func(name, certFile string, prefix []byte) string {
		t.Helper()
		certs, err := ukiLoadCerts(certFile)
		if err != nil {
			t.Fatal(err)
		}
		b, err := efivar.AppendSignatureLists(prefix, efivar.X509List(efivar.GUID{1}, certs[0]))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, db := range []string{esl("db.esl", ukiTestCert, nil), esl("db-efivarfs", ukiTestCert, []byte{0x27, 0, 0, 0})} {
		if got := runUKICLI(t, false, "verify", "--cert", db, out); !strings.Contains(got, "OK") {
			t.Errorf("uki verify --cert %s = %q, want OK", db, got)
		}
	}
	runUKICLI(t, true, "verify", "--cert", esl("other.esl", ukiOtherCrt, nil), out)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"uki", "verify", "--cert", filepath.Join(dir, "initrd"), out}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "nor an EFI signature list") {
		t.Errorf("uki verify --cert GARBAGE = %v, want an error naming both formats", err)
	}
}

func TestUKIStubFor(t *testing.T) {
	for goarch, want := range map[string]string{
		"amd64": "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
		"arm64": "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub",
	} {
		if got := ukiStubFor(goarch); got != want {
			t.Errorf("ukiStubFor(%q) = %q, want %q", goarch, got, want)
		}
	}
}
