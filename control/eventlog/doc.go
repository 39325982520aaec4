// Package eventlog parses the TPM 2.0 event log the firmware leaves in
// /sys/kernel/security/tpm0/binary_bios_measurements, in the crypto-agile
// format of the TCG PC Client Platform Firmware Profile (PFP) 1.05,
// section 10: a first TCG_PCR_EVENT (SHA-1 format) of type EV_NO_ACTION
// holding the "Spec ID Event03" header with the digest sizes, then
// TCG_PCR_EVENT2 records with one digest per bank. Replay recomputes the
// PCR values the log claims, to put beside the live PCRs (the control
// plane's pcrs verb).
//
// The log is untrusted input: every length is checked against the bytes
// left, no allocation exceeds the input, and Parse has a fuzz target.
//
// What it leaves out: the SHA-1-only log of TPM 1.2 firmware, parsing the
// event data of most types (EFI variable names and printable strings are
// decoded for display; the rest is shown as its size), and the IMA log.
package eventlog
