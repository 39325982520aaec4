package build

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"initos/pecoff"
)

// chooseRelease picks the kernel release: the one asked for, else the
// newest with a kernel image in /boot, else the first module directory.
func (r *router) chooseRelease() (string, error) {
	if r.only != "" {
		if !r.seen(r.only) {
			return "", fmt.Errorf("no modules for kernel %s in the image", r.only)
		}
		return r.only, nil
	}
	if len(r.releases) == 0 {
		return "", fmt.Errorf("no kernel modules in the image (/usr/lib/modules/<release> or /lib/modules/<release>): is it a host image with a kernel package?")
	}
	var booted []string
	for _, rel := range r.releases {
		if r.kernels["boot/vmlinuz-"+rel] != nil {
			booted = append(booted, rel)
		}
	}
	if len(booted) == 0 {
		return r.releases[0], nil
	}
	sort.Slice(booted, func(i, j int) bool { return compareVersions(booted[i], booted[j]) > 0 })
	return booted[0], nil
}

// others returns the releases found besides rel, sorted.
func (r *router) others(rel string) []string {
	set := map[string]bool{}
	for k := range r.skipped {
		set[k] = true
	}
	for _, s := range r.releases {
		set[s] = true
	}
	delete(set, rel)
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// kernel returns the kernel image of rel and its path in the image:
// /boot/vmlinuz-<rel>, else the module directory's vmlinuz, else the
// image's only kernel. A gzip-compressed image is decompressed; it must
// be a PE (EFI stub) image.
func (r *router) kernel(rel string) (string, []byte, error) {
	candidates := []string{"boot/vmlinuz-" + rel, "usr/lib/modules/" + rel + "/vmlinuz", "lib/modules/" + rel + "/vmlinuz"}
	var p string
	for _, c := range candidates {
		if r.kernels[c] != nil {
			p = c
			break
		}
	}
	if p == "" && len(r.kernels) == 1 {
		for k := range r.kernels {
			p = k
		}
	}
	if p == "" {
		return "", nil, fmt.Errorf("no kernel image for %s in the image (looked for /%s and /%s)", rel, candidates[0], candidates[1])
	}
	img := r.kernels[p]
	if bytes.HasPrefix(img, gzipMagic) {
		zr, err := gzip.NewReader(bytes.NewReader(img))
		if err != nil {
			return "", nil, fmt.Errorf("kernel /%s: %w", p, err)
		}
		if img, err = io.ReadAll(io.LimitReader(zr, maxKernelSize+1)); err != nil || len(img) > maxKernelSize {
			return "", nil, fmt.Errorf("kernel /%s: gunzip: %v (at most %d bytes)", p, err, maxKernelSize)
		}
	}
	if _, err := pecoff.Parse(img); err != nil {
		return "", nil, fmt.Errorf("kernel /%s: not an EFI (PE) image: %w", p, err)
	}
	return "/" + p, img, nil
}

// compareVersions compares kernel releases by their runs of digits as
// numbers and the rest as text ("6.1.0-10" > "6.1.0-9").
func compareVersions(a, b string) int {
	ca, cb := versionChunks(a), versionChunks(b)
	for i := 0; i < len(ca) && i < len(cb); i++ {
		x, errx := strconv.ParseUint(ca[i], 10, 64)
		y, erry := strconv.ParseUint(cb[i], 10, 64)
		switch {
		case errx == nil && erry == nil && x != y:
			if x < y {
				return -1
			}
			return 1
		case (errx != nil || erry != nil) && ca[i] != cb[i]:
			return strings.Compare(ca[i], cb[i])
		}
	}
	return len(ca) - len(cb)
}

// versionChunks splits s into runs of digits and of other characters.
func versionChunks(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := i + 1
		digit := s[i] >= '0' && s[i] <= '9'
		for j < len(s) && (s[j] >= '0' && s[j] <= '9') == digit {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}
