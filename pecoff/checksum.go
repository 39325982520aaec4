package pecoff

import "encoding/binary"

// peChecksum computes the PE image checksum ("PE Format", CheckSum: the
// algorithm of IMAGEHLP's CheckSumMappedFile):
//
//  1. Sum the file as little-endian 16-bit words (a last odd byte counts as
//     a word with a zero high byte), treating the 4-byte CheckSum field as
//     zero, folding carries above bit 15 back in (a ones'-complement sum).
//  2. Add the file length.
//
// The ones'-complement sum is taken modulo 0xffff, where 65536 is 1, so a
// little-endian 32-bit word counts as the sum of its two 16-bit halves:
// summing 32-bit words into 64 bits and folding once at the end gives the
// same result as folding after every 16-bit addition (for any file whose
// sum is not zero, which a file starting with "MZ" never is), four times
// faster. The CheckSum field is taken out by adding its complement.
func peChecksum(data []byte, checksumOff int) uint32 {
	var sum uint64
	i := 0
	for ; i+4 <= len(data); i += 4 {
		sum += uint64(binary.LittleEndian.Uint32(data[i:]))
	}
	if i+2 <= len(data) {
		sum += uint64(binary.LittleEndian.Uint16(data[i:]))
		i += 2
	}
	if i < len(data) {
		sum += uint64(data[i])
	}
	if checksumOff >= 0 && checksumOff+4 <= len(data) {
		// 1. the CheckSum field counts as zero: subtract its two words.
		sum += 0xffff - uint64(binary.LittleEndian.Uint16(data[checksumOff:]))
		sum += 0xffff - uint64(binary.LittleEndian.Uint16(data[checksumOff+2:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint32(sum) + uint32(len(data)) // 2.
}

// ComputeCheckSum returns the checksum the image's current bytes should
// carry in the optional header.
func (img *Image) ComputeCheckSum() uint32 {
	return peChecksum(img.data, img.ChecksumOffset())
}

// ChecksumOffset returns the file offset of the optional header's CheckSum
// field, which the Authenticode image hash skips.
func (img *Image) ChecksumOffset() int { return img.optOff + optCheckSum }

// updateChecksum marks the checksum stale; Bytes and CheckSum recompute
// it once, however many edits came before.
func (img *Image) updateChecksum() { img.stale = true }

func (img *Image) finalize() {
	if img.stale {
		img.putU32(optCheckSum, img.ComputeCheckSum())
		img.stale = false
	}
}
