// Package swtpmtest starts one swtpm (software TPM 2.0) per test, for the
// tests and benchmarks of initos/tpm2 and the commands built on it.
//
// Each Start runs `swtpm socket --tpm2` with its state in t.TempDir(),
// TPM2_Startup already done (--flags not-need-init,startup-clear), waits
// until it accepts connections, and kills and reaps it in t.Cleanup. No
// cgo simulator is involved: the TPM is the real libtpms behind swtpm.
package swtpmtest
