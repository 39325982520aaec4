package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// indexFile is STORE/index.json: the installed images and the names that
// point at them. It is rewritten atomically (temp file + rename).
type indexFile struct {
	Version int                    `json:"version"`
	Images  map[string]*indexImage `json:"images"` // by manifest digest
	Refs    map[string]string      `json:"refs"`   // name -> manifest digest
}

type indexImage struct {
	Chain  []string `json:"chain"`  // chain ids of the layers, bottom first
	Config string   `json:"config"` // config blob digest
}

const indexVersion = 1

func readIndex(dir string) (*indexFile, error) {
	ix := &indexFile{Version: indexVersion, Images: map[string]*indexImage{}, Refs: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if os.IsNotExist(err) {
		return ix, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	if err := json.Unmarshal(b, ix); err != nil {
		return nil, fmt.Errorf("read image index %s: %w", dir, err)
	}
	if ix.Version != indexVersion {
		return nil, fmt.Errorf("read image index %s: version %d, want %d", dir, ix.Version, indexVersion)
	}
	if ix.Images == nil {
		ix.Images = map[string]*indexImage{}
	}
	if ix.Refs == nil {
		ix.Refs = map[string]string{}
	}
	return ix, nil
}

func (ix *indexFile) write(dir string) error {
	b, err := json.MarshalIndent(ix, "", "\t")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "index.json"), append(b, '\n'), 0o644)
}

// names returns the sorted names of digest.
func (ix *indexFile) names(digest string) []string {
	var n []string
	for name, d := range ix.Refs {
		if d == digest {
			n = append(n, name)
		}
	}
	sort.Strings(n)
	return n
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
