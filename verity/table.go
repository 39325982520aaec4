package verity

import (
	"fmt"
	"strconv"
	"strings"
)

// TargetParams returns the verity target parameters of the device-mapper
// table (kernel Documentation/admin-guide/device-mapper/verity.rst):
//
//	<version> <data_dev> <hash_dev> <data_block_size> <hash_block_size>
//	<num_data_blocks> <hash_start_block> <algorithm> <root_digest> <salt>
//	[<#opt_params> <opt_params>...]
//
// dataDev and hashDev are device paths or major:minor; opts are optional
// arguments such as "ignore_zero_blocks" or "restart_on_corruption",
// counted as the kernel counts them (words, so "use_fec_from_device
// /dev/x" is two).
func (r *Result) TargetParams(dataDev, hashDev string, opts ...string) string {
	f := []string{
		strconv.FormatUint(uint64(r.HashType), 10), dataDev, hashDev,
		strconv.FormatUint(uint64(r.DataBlockSize), 10),
		strconv.FormatUint(uint64(r.HashBlockSize), 10),
		strconv.FormatUint(r.DataBlocks, 10),
		strconv.FormatUint(r.HashStartBlock, 10),
		r.Hash, r.RootHashHex(), r.SaltHex(),
	}
	var words []string
	for _, o := range opts {
		words = append(words, strings.Fields(o)...)
	}
	if len(words) > 0 {
		f = append(f, strconv.Itoa(len(words)))
		f = append(f, words...)
	}
	return strings.Join(f, " ")
}

// Table returns the one-line device-mapper table mapping the whole data:
// "0 <sectors> verity <TargetParams>".
func (r *Result) Table(dataDev, hashDev string, opts ...string) string {
	return fmt.Sprintf("0 %d verity %s", r.DataSectors(), r.TargetParams(dataDev, hashDev, opts...))
}

// KernelCmdline returns the kernel command-line argument that creates the
// device at boot (kernel Documentation/admin-guide/device-mapper/
// dm-init.rst): dm-mod.create="<name>,<uuid>,<minor>,<flags>,<table>",
// read-only, with no fixed minor; dmUUID may be empty. dm-init resolves
// devices before the root is mounted: give paths such as /dev/vda2 or
// major:minor.
func (r *Result) KernelCmdline(name, dmUUID, dataDev, hashDev string, opts ...string) string {
	return `dm-mod.create="` + name + "," + dmUUID + ",,ro," + r.Table(dataDev, hashDev, opts...) + `"`
}
