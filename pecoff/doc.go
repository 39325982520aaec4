// Package pecoff reads PE32+ images and edits them the way a Unified Kernel
// Image (UKI) is assembled: it appends sections after a systemd-stub,
// replaces the stub's .sbat, keeps the optional header consistent
// (SizeOfImage, SizeOfInitializedData, SizeOfHeaders, CheckSum) and manages
// the attribute certificate table (WIN_CERTIFICATE entries) that carries
// Authenticode signatures.
//
// Specs: Microsoft "PE Format" (sections "Optional Header Windows-Specific
// Fields", "Section Table", "The Attribute Certificate Table"); the UAPI
// Group "Unified Kernel Image" specification and systemd's ukify, whose
// section order and placement rules Build follows (new sections start at the
// end of the previous one rounded up to SectionAlignment, their file data at
// the end of the file rounded up to FileAlignment; .linux comes last so the
// kernel has room to decompress in place).
//
// Reading uses debug/pe for the headers; the section table is decoded into,
// and written back from, debug/pe's SectionHeader32. The design named
// foxboron/go-uefi for this work, but the module proxy refuses it (HTTP 403),
// so this package and initos/authenticode are our own implementation, written
// from the specifications above (no code was copied).
//
// Parse checks every offset and size that a reader or editor uses later
// (sections inside the file and inside the 32-bit address space, also the
// PointerToRawData of empty sections; the certificate table and its
// entries), so the readers never slice outside the file; they are bounded
// on their own as well. FuzzParse exercises them on arbitrary input.
//
// Left out: PE32 (32-bit) images, COFF symbol tables (ukify strips them from
// old stubs; we reject no stub for having one but never write one), and
// computing .pcrsig (systemd-measure's JSON is taken as opaque bytes).
package pecoff
