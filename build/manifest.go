package build

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// ManifestVersion is the version of manifest.json this package writes.
const ManifestVersion = 1

// Manifest is manifest.json: what was built, from what, how.
type Manifest struct {
	Version      int         `json:"version"`
	Arch         string      `json:"arch"`
	Kernel       KernelInfo  `json:"kernel"`
	Source       SourceInfo  `json:"source"`
	ModulesImage ModulesInfo `json:"modules_image"`
	Initrd       InitrdInfo  `json:"initrd"`
	UKI          UKIInfo     `json:"uki"`
	// Installer is the USB installer's UKI, when Options.Installer asked
	// for one.
	Installer      *InstallerInfo `json:"installer,omitempty"`
	Inputs         InputsInfo     `json:"inputs"`
	SkippedKernels []string       `json:"skipped_kernels"`
	Files          []FileInfo     `json:"files"`
}

// KernelInfo is the kernel taken from the image.
type KernelInfo struct {
	Release string `json:"release"`
	Path    string `json:"path"`   // in the image
	SHA256  string `json:"sha256"` // of the (decompressed) EFI image
	Size    int64  `json:"size"`
}

// SourceInfo is the host image.
type SourceInfo struct {
	Image    string      `json:"image"`
	Digest   string      `json:"digest"`
	Platform string      `json:"platform"`
	Layers   []LayerInfo `json:"layers"`
}

// ModulesInfo is the modules image.
type ModulesInfo struct {
	File       string `json:"file"`
	ESPPath    string `json:"esp_path"`
	RootHash   string `json:"root_hash"`
	Salt       string `json:"salt"`
	DataSize   int64  `json:"data_size"`
	HashOffset int64  `json:"hash_offset"`
	Modules    int    `json:"modules"`
	Firmware   int    `json:"firmware"`
	Compressor string `json:"compressor"`
	Level      int    `json:"level"`
	BlockSize  int    `json:"block_size"`
}

// InitrdInfo is the production initrd inside the UKI.
type InitrdInfo struct {
	SHA256          string   `json:"sha256"`
	Size            int64    `json:"size"`
	Compression     string   `json:"compression"`
	EarlyModules    []string `json:"early_modules"`
	SecurityVersion uint64   `json:"security_version"`
	BuildID         string   `json:"build_id"`
}

// UKIInfo is the UKI.
type UKIInfo struct {
	File      string `json:"file"`
	Cmdline   string `json:"cmdline"`
	Signed    bool   `json:"signed"`
	Signer    string `json:"signer,omitempty"`
	PCRPolicy bool   `json:"pcr_policy"`
}

// InputsInfo are the build's own inputs.
type InputsInfo struct {
	InitosInitSHA256 string `json:"initos_init_sha256"`
	StubSHA256       string `json:"stub_sha256"`
	Epoch            int64  `json:"epoch"`
}

// FileInfo is an output file.
type FileInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Marshal returns the manifest as indented JSON.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseManifest parses manifest.json strictly: unknown fields, trailing
// data and other versions are errors.
func ParseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("manifest: data after the object")
	}
	if m.Version != ManifestVersion {
		return nil, fmt.Errorf("manifest: version %d, want %d", m.Version, ManifestVersion)
	}
	return &m, nil
}

// ReadManifest reads and parses a manifest.json file.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseManifest(b)
}
