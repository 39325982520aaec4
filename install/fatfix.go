package install

import (
	"encoding/binary"
	"fmt"
	"io"
)

// fixFAT corrects two things go-diskfs v1.9.4 writes differently from the
// FAT specification (Microsoft "FAT: General Overview of On-Disk Format"
// 1.03), which fsck.fat reports:
//
//  1. the ".." entry of a directory whose parent is the root directory
//     must hold cluster 0 ("the root directory ... has no cluster"), not
//     the root directory's cluster number;
//  2. the FSInfo sector's free cluster count and next free cluster
//     (FSI_Free_Count, FSI_Nxt_Free) are left "unknown" (0xFFFFFFFF);
//     mkfs.fat and the kernel keep them exact, so they are computed from
//     the FAT and written to FSInfo and its backup.
//
// It reads the boot sector, so it works on any FAT32 filesystem at off.
func fixFAT(dev io.ReaderAt, w io.WriterAt, off int64) error {
	var bs [512]byte
	if _, err := dev.ReadAt(bs[:], off); err != nil {
		return fmt.Errorf("read the boot sector: %w", err)
	}
	g, err := fatGeometryOf(bs[:])
	if err != nil {
		return err
	}
	fat := make([]byte, g.fatBytes)
	if _, err := dev.ReadAt(fat, off+g.fatStart); err != nil {
		return fmt.Errorf("read the FAT: %w", err)
	}
	if err := fixDotDot(dev, w, off, g); err != nil {
		return err
	}
	return writeFSInfo(dev, w, off, g, fat)
}

// fatGeometry is what fixFAT needs from a FAT32 boot sector.
type fatGeometry struct {
	bytesPerSector, clusterBytes int64
	fatStart, fatBytes, data     int64 // byte offsets and size, from the volume start
	rootCluster                  uint32
	clusters                     uint32 // data clusters
	fsinfo, backup               int64  // sectors
}

func fatGeometryOf(bs []byte) (*fatGeometry, error) {
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(bs[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(bs[o:])) }
	g := &fatGeometry{bytesPerSector: le16(11), fatBytes: le32(36) * le16(11)}
	if bs[510] != 0x55 || bs[511] != 0xaa || g.bytesPerSector < 512 || bs[13] == 0 || bs[16] != 2 || le16(22) != 0 {
		return nil, fmt.Errorf("not a FAT32 boot sector")
	}
	g.clusterBytes = int64(bs[13]) * g.bytesPerSector
	g.fatStart = le16(14) * g.bytesPerSector
	g.data = g.fatStart + 2*g.fatBytes
	g.rootCluster = uint32(le32(44))
	g.fsinfo, g.backup = le16(48), le16(50)
	total := le32(32) * g.bytesPerSector
	g.clusters = uint32((total - g.data) / g.clusterBytes)
	if g.fatBytes/4 < int64(g.clusters)+2 {
		return nil, fmt.Errorf("FAT of %d bytes is too small for %d clusters", g.fatBytes, g.clusters)
	}
	return g, nil
}

// fixDotDot sets the ".." cluster of the root's subdirectories to 0. The
// root directory is read through its first cluster only: the installer's
// root holds a label and a few entries.
func fixDotDot(dev io.ReaderAt, w io.WriterAt, off int64, g *fatGeometry) error {
	root := make([]byte, g.clusterBytes)
	if _, err := dev.ReadAt(root, off+g.clusterOffset(g.rootCluster)); err != nil {
		return fmt.Errorf("read the root directory: %w", err)
	}
	for i := 0; i+32 <= len(root) && root[i] != 0; i += 32 {
		e := root[i : i+32]
		if e[0] == 0xe5 || e[11]&0x0f == 0x0f || e[11]&0x10 == 0 || e[0] == '.' {
			continue
		}
		c := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
		if c < 2 || c >= g.clusters+2 {
			continue
		}
		var dotdot [32]byte
		at := off + g.clusterOffset(c) + 32
		if _, err := dev.ReadAt(dotdot[:], at); err != nil {
			return fmt.Errorf("read the '..' entry of cluster %d: %w", c, err)
		}
		if string(dotdot[:11]) != "..         " {
			continue
		}
		clear(dotdot[20:22])
		clear(dotdot[26:28])
		if _, err := w.WriteAt(dotdot[:], at); err != nil {
			return err
		}
	}
	return nil
}

func (g *fatGeometry) clusterOffset(c uint32) int64 {
	return g.data + int64(c-2)*g.clusterBytes
}

// writeFSInfo writes the free cluster count and the first free cluster
// into FSInfo and its backup copy.
func writeFSInfo(dev io.ReaderAt, w io.WriterAt, off int64, g *fatGeometry, fat []byte) error {
	free, next := uint32(0), uint32(0xffffffff)
	for c := uint32(2); c < g.clusters+2; c++ {
		if binary.LittleEndian.Uint32(fat[4*c:])&0x0fffffff == 0 {
			if free == 0 {
				next = c
			}
			free++
		}
	}
	var v [8]byte
	binary.LittleEndian.PutUint32(v[0:], free)
	binary.LittleEndian.PutUint32(v[4:], next)
	sectors := []int64{g.fsinfo}
	if g.backup > 0 && g.backup != 0xffff {
		sectors = append(sectors, g.backup+1)
	}
	for _, s := range sectors {
		at := off + s*g.bytesPerSector
		var sig [4]byte
		if _, err := dev.ReadAt(sig[:], at); err != nil || string(sig[:]) != "RRaA" {
			continue
		}
		if _, err := w.WriteAt(v[:], at+488); err != nil {
			return err
		}
	}
	return nil
}
