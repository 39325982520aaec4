package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out")
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("ReadFile(%s) = %q, %v, want %q", p, got, err, content)
		}
	}
	assertOnly(t, filepath.Dir(p), "out")
}

func TestPrivateMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	f, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("temporary file mode = %v, %v, want 0600 before any byte is written", st.Mode(), err)
	}
	if _, err := f.WriteString("secret"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("Stat(%s) = %v, %v, want mode 0600", p, st.Mode(), err)
	}
}

func TestFailedFillKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	if err := WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), p) {
		t.Errorf("Write(failing fill) = %v, want an error naming %s wrapping boom", err, p)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("after a failed Write the file holds %q, want %q", got, "old")
	}
	assertOnly(t, dir, "out")
}

func TestAbortAfterCommit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out")
	f, err := Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil {
		t.Errorf("Abort after Commit = %v, want nil", err)
	}
	if err := f.Commit(); err == nil {
		t.Error("second Commit = nil, want an error")
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("Abort after Commit removed the file: %v", err)
	}
}

func TestCreateMissingDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "no", "such", "out")
	if _, err := Create(p, 0o644); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Create(%s) = %v, want an error naming the path", p, err)
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("directory %s holds %v, want %v (no temporary file left)", dir, got, names)
	}
}

func TestCommitAs(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "blob"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("content")
	if err := f.CommitAs(filepath.Join(dir, "sha256-abc")); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, "sha256-abc")
	g, err := Create(filepath.Join(dir, "blob"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "x")
	if err := g.CommitAs(other); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("CommitAs(other directory) = %v, want an error naming it", err)
	}
	assertOnly(t, dir, "sha256-abc")
}
