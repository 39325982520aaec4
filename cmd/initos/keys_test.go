package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/efivar"
)

func writeVar(t *testing.T, dir, name string, guid efivar.GUID, attrs uint32, data []byte) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, attrs)
	if err := os.WriteFile(filepath.Join(dir, name+"-"+guid.String()), append(b, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKeysCLI(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	keys := filepath.Join(t.TempDir(), "keys")
	mustRun(t, "keys", "create", "--cn", "Test", "--owner", "11111111-2222-3333-4444-555555555555", keys)
	for _, f := range []string{"PK.key", "PK.crt", "PK.cer", "PK.esl", "PK.auth", "KEK.auth", "db.auth", "db.key", "noPK.auth", "owner.guid"} {
		if _, err := os.Stat(filepath.Join(keys, f)); err != nil {
			t.Errorf("keys create did not write %s: %v", f, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(keys, "db.key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("db.key mode = %v, want 0600", fi.Mode().Perm())
	}
	mustFail(t, "keys", "create", keys)                    // refuses to overwrite
	mustFail(t, "keys", "create", "--microsoft", keys+"2") // no vendor certs shipped

	vars := t.TempDir()
	mustFail(t, "keys", "enroll", "--efivars", vars, keys) // not in setup mode
	writeVar(t, vars, "SetupMode", efivar.GlobalVariable, 6, []byte{1})
	mustRun(t, "keys", "enroll", "--efivars", vars, keys)
	for _, v := range []string{"PK-" + efivar.GlobalVariable.String(), "KEK-" + efivar.GlobalVariable.String(), "db-" + efivar.ImageSecurityDB.String()} {
		if _, err := os.Stat(filepath.Join(vars, v)); err != nil {
			t.Errorf("enroll did not write %s", v)
		}
	}
	// Straight after enroll, a directory store holds the .auth payloads.
	if out := mustRun(t, "keys", "status", "--efivars", vars); !strings.Contains(out, "db: CN=Test db") {
		t.Errorf("keys status after enroll = %q, want db: CN=Test db", out)
	}
	// Emulate the firmware: the variables now hold the lists, user mode.
	for _, v := range []struct {
		name string
		guid efivar.GUID
	}{{"PK", efivar.GlobalVariable}, {"KEK", efivar.GlobalVariable}, {"db", efivar.ImageSecurityDB}} {
		esl, _ := os.ReadFile(filepath.Join(keys, v.name+".esl"))
		writeVar(t, vars, v.name, v.guid, efivar.AuthAttributes, esl)
	}
	writeVar(t, vars, "SetupMode", efivar.GlobalVariable, 6, []byte{0})
	writeVar(t, vars, "SecureBoot", efivar.GlobalVariable, 6, []byte{1})
	out := mustRun(t, "keys", "status", "--efivars", vars)
	for _, want := range []string{"SetupMode=0", "SecureBoot=1", "PK: CN=Test PK", "KEK: CN=Test KEK", "db: CN=Test db"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys status = %q, want %q", out, want)
		}
	}
	// The db key signs UKIs that verify against db.crt.
	dir := ukiTestInputs(t)
	uki := filepath.Join(dir, "uki.efi")
	mustRun(t, "uki", "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
		"--key", filepath.Join(keys, "db.key"), "--cert", filepath.Join(keys, "db.crt"), "-o", uki)
	mustRun(t, "uki", "verify", "--cert", filepath.Join(keys, "db.cer"), uki)
}

func TestEFIBootCLI(t *testing.T) {
	vars := t.TempDir()
	writeVar(t, vars, "BootCurrent", efivar.GlobalVariable, 6, []byte{0, 0})
	add := []string{"efi", "boot", "add", "--efivars", vars, "--part-guid", "0fc63daf-8483-4772-8e79-3d69d8477de4",
		"--part-start", "2048", "--part-size", "204800"}
	if got := mustRun(t, append(add, "--label", "A", "--loader", `\EFI\Linux\a.efi`)...); got != "Boot0000\n" {
		t.Errorf("efi boot add = %q, want Boot0000", got)
	}
	mustRun(t, append(add, "--label", "B", "--loader", `\EFI\Linux\b.efi`)...)
	mustRun(t, "efi", "boot", "next", "--efivars", vars, "0")
	mustFail(t, "efi", "boot", "next", "--efivars", vars, "7") // no such entry
	mustRun(t, "efi", "boot", "order", "--efivars", vars, "0,1")
	out := mustRun(t, "efi", "boot", "list", "--efivars", vars)
	for _, want := range []string{"BootCurrent: 0000", "BootNext: 0000", "BootOrder: 0000,0001", `Boot0001* B	HD(1,GPT,0fc63daf-8483-4772-8e79-3d69d8477de4,0x800,0x32000)/\EFI\Linux\b.efi`} {
		if !strings.Contains(out, want) {
			t.Errorf("efi boot list = %q, want %q", out, want)
		}
	}
	mustRun(t, "efi", "boot", "rm", "--efivars", vars, "Boot0000")
	if got := mustRun(t, "efi", "boot", "order", "--efivars", vars); got != "0001\n" {
		t.Errorf("efi boot order after rm = %q, want 0001", got)
	}
	mustFail(t, "efi", "boot", "add", "--efivars", vars) // missing partition
	mustFail(t, "efi", "frobnicate")
}

func TestSourceDateEpoch(t *testing.T) {
	for _, tt := range []struct {
		env     string
		want    int64
		ok, err bool
	}{
		{"", 0, false, false},
		{"1700000000", 1700000000, true, false},
		{"soon", 0, false, true},
	} {
		t.Setenv("SOURCE_DATE_EPOCH", tt.env)
		got, ok, err := sourceDateEpoch()
		if ok != tt.ok || (err != nil) != tt.err || (ok && got.Unix() != tt.want) {
			t.Errorf("sourceDateEpoch(SOURCE_DATE_EPOCH=%q) = %v, %t, %v; want %d, %t, error %t", tt.env, got, ok, err, tt.want, tt.ok, tt.err)
		}
	}
}
