// Package efivar reads and writes UEFI variables and the structures stored
// in them: Secure Boot signature databases (PK, KEK, db), time-based
// authenticated variable updates, and boot entries (Boot####, BootOrder,
// BootNext, BootCurrent).
//
// Specs: UEFI Specification 2.10, sections 3.1.1 (boot manager variables),
// 3.1.3 (EFI_LOAD_OPTION), 8.2 (SetVariable, EFI_VARIABLE_AUTHENTICATION_2,
// EFI_TIME), 10.3 (device path nodes: Hard Drive, File Path, End), 32.4
// (EFI_SIGNATURE_LIST, EFI_SIGNATURE_DATA) and 32.3 (setup and user modes);
// the Linux efivarfs ABI (Documentation/filesystems/efivarfs.rst): one file
// per variable named Name-GUID, holding the 4-byte attributes then the data,
// written with a single write(2), most files immutable (FS_IMMUTABLE_FL) until
// cleared with FS_IOC_SETFLAGS.
//
// Variables are reached through the Store interface; Dir implements it on a
// directory laid out like efivarfs, so all logic runs on plain directories in
// tests, and OpenEfivarfs (Linux) on the real thing.
//
// The design named foxboron/go-uefi for this; the module proxy refuses it
// (HTTP 403), so this is our own implementation, written from the specs (no
// code copied). PKCS #7 signing comes from initos/authenticode.
//
// Left out: dbx/dbt/MokList handling, EFI_VARIABLE_AUTHENTICATION (the
// counter-based form), device path node types other than Hard Drive and File
// Path (kept as raw nodes), and Microsoft's vendor certificates (not shipped
// with InitOS; see docs/keys.md).
package efivar
