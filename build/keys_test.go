package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bt "initos/internal/buildtest"
)

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	bt.WriteKeys(t, dir)
	k, err := LoadKeys(dir, "")
	if err != nil || k.PCRKey == nil || k.DBCert.Subject.CommonName != "InitOS test db" {
		t.Fatalf("LoadKeys(dir, \"\") = %+v, %v, want the db key, its certificate and pcr.key", k, err)
	}
	if k, err := LoadKeys(dir, PCRKeyNone); err != nil || k.PCRKey != nil {
		t.Errorf("LoadKeys(dir, none) = %+v, %v, want no PCR key", k, err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	noPCR := t.TempDir()
	bt.WriteKeys(t, noPCR)
	os.Remove(filepath.Join(noPCR, "pcr.key"))
	tests := []struct {
		dir, pcr, want string
	}{
		{t.TempDir(), "", "db.key: no such file or directory (a directory made by `initos keys create`)"},
		{noPCR, "", "no PCR policy key " + filepath.Join(noPCR, "pcr.key") + ": make one"},
		{noPCR, "", "or build without a signed PCR policy with --pcr-key none"},
		{dir, bad, "keys: PCR policy key: " + bad},
		{dir, "/nonexistent.pem", "keys: PCR policy key: open /nonexistent.pem"},
	}
	for _, tc := range tests {
		if _, err := LoadKeys(tc.dir, tc.pcr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadKeys(%s, %q) = %v, want an error containing %q", tc.dir, tc.pcr, err, tc.want)
		}
	}
}
