package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"initos/internal/atomicfile"
)

// indexFile is STORE/index.json: the installed images and the names that
// point at them. It is rewritten atomically (internal/atomicfile: temp
// file, fsync, rename, fsync of the store directory).
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
	return atomicfile.WriteFile(filepath.Join(dir, "index.json"), append(b, '\n'), 0o600)
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
