// Package client is the owner's side of the InitOS control plane: it runs
// control-plane verbs (status, unlock, logs, pcrs, reseal, reboot,
// poweroff, boot-slot, install) on one host or on a fleet over SSH, with
// golang.org/x/crypto/ssh.
//
// Host keys are pinned: every connection is checked against an OpenSSH
// known_hosts file (golang.org/x/crypto/ssh/knownhosts), and a host that
// is absent or presents another key is refused, never trusted on first
// use. Hosts are learned at install time, when the installer derives the
// TPM host key and records it with AddKnownHost (or prints its
// fingerprint for the owner to check).
//
// RunAll runs one verb on many hosts in parallel and returns one Result per
// host, in the order of the hosts, each with its exit status, its output
// and, for --json verbs, the host's JSON answer.
//
// What it leaves out: password and keyboard-interactive authentication
// (the server accepts public keys only), OpenSSH config files, jump hosts,
// and hashed known_hosts writing (hashed entries are read).
package client
