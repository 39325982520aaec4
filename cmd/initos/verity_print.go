package main

import (
	"fmt"
	"io"

	"initos/verity"
)

// treeJSON is the --json form of a tree.
type treeJSON struct {
	UUID           string `json:"uuid,omitempty"`
	HashType       uint32 `json:"hash_type"`
	DataBlocks     uint64 `json:"data_blocks"`
	DataBlockSize  uint32 `json:"data_block_size"`
	HashBlocks     uint64 `json:"hash_blocks"`
	HashBlockSize  uint32 `json:"hash_block_size"`
	HashAlgorithm  string `json:"hash_algorithm"`
	Salt           string `json:"salt"`
	RootHash       string `json:"root_hash,omitempty"`
	Superblock     bool   `json:"superblock"`
	HashOffset     int64  `json:"hash_offset"`
	HashStartBlock uint64 `json:"hash_start_block"`
	HashDeviceSize int64  `json:"hash_device_size"`
}

// treeOf is the JSON form of a tree, with its root hash when withRoot.
func treeOf(r *verity.Result, withRoot bool) treeJSON {
	j := treeJSON{treeUUID(r), r.HashType, r.DataBlocks, r.DataBlockSize, r.HashBlocks, r.HashBlockSize,
		r.Hash, r.SaltHex(), "", r.Superblock, r.HashOffset, r.HashStartBlock, r.HashEnd()}
	if withRoot {
		j.RootHash = r.RootHashHex()
	}
	return j
}

func treeUUID(r *verity.Result) string {
	if r.Superblock {
		return r.UUID.String()
	}
	return ""
}

// printTree prints a tree the way veritysetup format (withRoot) and dump
// do, or as JSON.
func printTree(w io.Writer, hashPath string, r *verity.Result, withRoot, asJSON bool) error {
	if asJSON {
		return writeJSON(w, treeOf(r, withRoot))
	}
	uuid := treeUUID(r)
	fmt.Fprintf(w, "VERITY header information for %s\n", hashPath)
	fmt.Fprintf(w, "UUID:            \t%s\n", uuid)
	fmt.Fprintf(w, "Hash type:       \t%d\n", r.HashType)
	fmt.Fprintf(w, "Data blocks:     \t%d\n", r.DataBlocks)
	fmt.Fprintf(w, "Data block size: \t%d\n", r.DataBlockSize)
	fmt.Fprintf(w, "Hash blocks:     \t%d\n", r.HashBlocks)
	fmt.Fprintf(w, "Hash block size: \t%d\n", r.HashBlockSize)
	fmt.Fprintf(w, "Hash algorithm:  \t%s\n", r.Hash)
	fmt.Fprintf(w, "Salt:            \t%s\n", r.SaltHex())
	if withRoot {
		fmt.Fprintf(w, "Root hash:      \t%s\n", r.RootHashHex())
	}
	if r.HashOffset == 0 {
		fmt.Fprintf(w, "Hash device size: \t%d [bytes]\n", r.HashEnd())
	}
	return nil
}
