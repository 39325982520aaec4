package authenticode

import (
	"crypto"
	"fmt"
	"sort"

	"initos/pecoff"
)

// Hash returns the Authenticode digest of img with hash function h,
// following "Calculating the PE Image Hash" step by step.
func Hash(img *pecoff.Image, h crypto.Hash) ([]byte, error) {
	if !h.Available() {
		return nil, fmt.Errorf("hash image: hash function %v not linked in", h)
	}
	// 1. Load the image header into memory.
	data := img.Bytes()
	csum := img.ChecksumOffset()
	certEntry, err := img.CertTableEntryOffset()
	if err != nil {
		return nil, fmt.Errorf("hash image: %w", err)
	}
	hdrEnd := int(img.SizeOfHeaders())
	if hdrEnd > len(data) || certEntry+8 > hdrEnd {
		return nil, fmt.Errorf("hash image: SizeOfHeaders %#x does not cover the data directories", hdrEnd)
	}
	// 2. Initialize a hash algorithm context.
	d := h.New()
	// 3. Hash the image header from its base to immediately before the
	//    start of the checksum address.
	d.Write(data[:csum])
	// 4. Skip over the checksum, which is a 4-byte field.
	// 5. Hash everything from the end of the checksum field to immediately
	//    before the start of the Certificate Table entry.
	d.Write(data[csum+4 : certEntry])
	// 6. Get the Attribute Certificate Table address and size from the
	//    Certificate Table entry.
	_, certSize := img.CertTable()
	// 7. Exclude the Certificate Table entry (8 bytes) and hash everything
	//    from its end to the end of the image header, section table
	//    included.
	d.Write(data[certEntry+8 : hdrEnd])
	// 8. SUM_OF_BYTES_HASHED starts at SizeOfHeaders.
	sum := uint64(hdrEnd)
	// 9. Build a table of the section headers whose SizeOfRawData is not 0,
	// 10. sorted by PointerToRawData.
	secs := rawSections(img)
	// 11. Hash each section's SizeOfRawData bytes in that order,
	// 12. adding SizeOfRawData to SUM_OF_BYTES_HASHED,
	// 13. for every section of the sorted table.
	for _, s := range secs {
		d.Write(data[s.Offset : uint64(s.Offset)+uint64(s.Size)]) // pecoff.Parse checked the bounds
		sum += uint64(s.Size)
	}
	// 14. Hash the extra data after the sections, if any: from
	//     SUM_OF_BYTES_HASHED to the file size minus the certificate table.
	fileSize := uint64(len(data))
	if fileSize < uint64(certSize) {
		return nil, fmt.Errorf("hash image: certificate table (%d bytes) is larger than the file", certSize)
	}
	if end := fileSize - uint64(certSize); end > sum {
		d.Write(data[sum:end])
	}
	// 15. Finalize the hash algorithm context.
	return d.Sum(nil), nil
}

func rawSections(img *pecoff.Image) []pecoff.Section {
	var secs []pecoff.Section
	for _, s := range img.Sections() {
		if s.Size != 0 {
			secs = append(secs, s)
		}
	}
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].Offset < secs[j].Offset })
	return secs
}
