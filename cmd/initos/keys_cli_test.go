package main

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/efivar"
)

func TestKeysStatusJSON(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	keys := filepath.Join(t.TempDir(), "keys")
	mustRun(t, "keys", "create", "--cn", "Test", keys)
	vars := t.TempDir()
	writeVar(t, vars, "SetupMode", efivar.GlobalVariable, 6, []byte{1})
	writeVar(t, vars, "SecureBoot", efivar.GlobalVariable, 6, []byte{0})
	var empty keysStatusJSON
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "status", "--json", "--efivars", vars)), &empty); err != nil {
		t.Fatal(err)
	}
	if empty.SetupMode != 1 || empty.SecureBoot != 0 || empty.PK == nil || len(empty.DB) != 0 {
		t.Errorf("keys status --json (setup mode) = %+v, want SetupMode 1 and empty lists", empty)
	}
	mustRun(t, "keys", "enroll", "--efivars", vars, keys)
	var st keysStatusJSON
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "status", "--json", "--efivars", vars)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.DB) != 1 || st.DB[0].Subject != "CN=Test db" || len(st.DB[0].SHA256) != 64 || len(st.PK) != 1 || len(st.KEK) != 1 {
		t.Errorf("keys status --json = %+v, want one certificate each, db CN=Test db", st)
	}
}

func TestEFIBootListJSON(t *testing.T) {
	vars := t.TempDir()
	writeVar(t, vars, "BootCurrent", efivar.GlobalVariable, 6, []byte{1, 0})
	mustRun(t, "efi", "boot", "add", "--efivars", vars, "--part-guid", "0fc63daf-8483-4772-8e79-3d69d8477de4",
		"--part-start", "2048", "--part-size", "204800", "--label", "InitOS A")
	var l efiBootJSON
	if err := json.Unmarshal([]byte(mustRun(t, "efi", "boot", "list", "--json", "--efivars", vars)), &l); err != nil {
		t.Fatal(err)
	}
	if l.BootCurrent != "0001" || l.BootNext != "" || strings.Join(l.BootOrder, ",") != "0000" || len(l.Entries) != 1 {
		t.Fatalf("efi boot list --json = %+v", l)
	}
	if e := l.Entries[0]; e.Name != "Boot0000" || !e.Active || e.Description != "InitOS A" || !strings.HasSuffix(e.FilePath, `\EFI\Linux\initos.efi`) {
		t.Errorf("entry = %+v", e)
	}
}

func TestKeysEFIUsage(t *testing.T) {
	vars := t.TempDir()
	keys := filepath.Join(t.TempDir(), "keys")
	for _, c := range []cliCase{
		{args: []string{"keys", "create", "--help"}, code: 0, stdout: "usage: initos keys create [--cn NAME]"},
		{args: []string{"keys", "enroll", "-h"}, code: 0, stdout: "  --efivars DIR"},
		{args: []string{"keys", "status", "--help"}, code: 0, stdout: "  --json"},
		{args: []string{"efi", "boot", "list", "--help"}, code: 0, stdout: "  --json"},
		{args: []string{"efi", "boot", "add", "--help"}, code: 0, stdout: "  --part-guid GUID"},
		{args: []string{"efi", "boot", "rm", "--help"}, code: 0, stdout: "usage: initos efi boot rm [--efivars DIR] ENTRY"},
		{args: []string{"efi", "boot", "next", "--help"}, code: 0, stdout: "once, on the next boot only"},
		{args: []string{"efi", "boot", "order", "--help"}, code: 0, stdout: "usage: initos efi boot order"},
		{args: []string{"keys", "create"}, code: 2, stderr: "wrong number of arguments (0, want 1)"},
		{args: []string{"keys", "create", "--microsoft", keys}, code: 2, stderr: "--microsoft: InitOS ships no Microsoft certificates"},
		{args: []string{"keys", "create", "--owner", "nope", keys}, code: 2, stderr: "--owner:"},
		{args: []string{"keys", "status", "--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{args: []string{"keys", "status", "--efivars", filepath.Join(vars, "missing")}, code: 1, stderr: "keys status:"},
		{args: []string{"keys", "enroll", "--efivars", vars, keys}, code: 1, stderr: "keys enroll:"},
		{args: []string{"efi", "frobnicate"}, code: 2, stderr: `unknown subcommand "frobnicate" (want: boot)`},
		{args: []string{"efi", "boot", "rm", "--efivars", vars, "xyz"}, code: 2, stderr: `boot entry "xyz" is not 1-4 hex digits`},
		{args: []string{"efi", "boot", "order", "--efivars", vars, "1,zz"}, code: 2, stderr: `boot entry "zz" is not 1-4 hex digits`},
		{args: []string{"efi", "boot", "add", "--efivars", vars}, code: 2, stderr: "usage: initos efi boot add: --part-guid is required"},
		{args: []string{"efi", "boot", "add", "--efivars", vars, "--part-guid", "x"}, code: 2, stderr: "--part-guid:"},
		{args: []string{"efi", "boot", "next", "--efivars", vars, "7"}, code: 1, stderr: "efi boot next:"},
	} {
		c.check(t)
	}
}

// TestKeysCreateMicrosoft: --microsoft acts: Microsoft's certificates of
// --extra-db reach db only with it, other vendors' always.
func TestKeysCreateMicrosoft(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := t.TempDir()
	var certs []*x509.Certificate
	for _, p := range []string{"../../authenticode/testdata/MicCorUEFCA2011_2011-06-27.crt", ukiOtherCrt} {
		c, err := ukiLoadCerts(p)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c[0])
	}
	esl := func(name string, certs ...*x509.Certificate) string {
		var lists []efivar.SignatureList
		for _, c := range certs {
			lists = append(lists, efivar.X509List(efivar.GUID{7}, c))
		}
		b, err := efivar.AppendSignatureLists(nil, lists...)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vendor := esl("vendor.esl", certs...)
	dbSubjects := func(keys string) string {
		b, err := os.ReadFile(filepath.Join(keys, "db.esl"))
		if err != nil {
			t.Fatal(err)
		}
		lists, _ := efivar.ParseSignatureLists(b)
		cs, _ := efivar.Certificates(lists)
		var s []string
		for _, c := range cs {
			s = append(s, c.Subject.CommonName)
		}
		return strings.Join(s, ", ")
	}
	cliCase{args: []string{"keys", "create", "--cn", "T", "--extra-db", vendor, filepath.Join(dir, "a")}, code: 0,
		stderr: "left out 1 Microsoft certificate(s)"}.check(t)
	if got, want := dbSubjects(filepath.Join(dir, "a")), "T db, InitOS test other"; got != want {
		t.Errorf("db without --microsoft = %s, want %s", got, want)
	}
	cliCase{args: []string{"keys", "create", "--cn", "T", "--microsoft", "--extra-db", vendor, filepath.Join(dir, "b")}, code: 0}.check(t)
	if got, want := dbSubjects(filepath.Join(dir, "b")), "T db, Microsoft Corporation UEFI CA 2011, InitOS test other"; got != want {
		t.Errorf("db with --microsoft = %s, want %s", got, want)
	}
	cliCase{args: []string{"keys", "create", "--microsoft", "--extra-db", esl("other.esl", certs[1]), filepath.Join(dir, "c")}, code: 1,
		stderr: "--microsoft: " + filepath.Join(dir, "other.esl") + " holds no Microsoft certificate"}.check(t)
}
