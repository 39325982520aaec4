// Package control is the initrd side of the InitOS control plane: when
// initos-init cannot unlock the disks (or runs in install mode), it brings
// the network up and serves SSH, so the owner can see why, unlock with a
// recovery key, reseal, read the logs, or reboot into the other slot —
// with no shell anywhere.
//
// What it implements:
//
//   - Network bring-up (BringUp, Linux): links up through netlink
//     (github.com/vishvananda/netlink), IPv6 left to the kernel (link-local
//     and SLAAC once the link is up), then DHCPv4
//     (github.com/insomniacslk/dhcp/dhcpv4/nclient4, RFC 2131, lease renewed
//     at T1) or a static address and gateway. Every wait is bounded.
//   - An SSH server (Server) on golang.org/x/crypto/ssh: public-key
//     authentication only, for the user root, against authorized keys and
//     user-certificate CAs that the caller passes (from the signed initrd
//     config, never from a file on the ESP); exec requests only (no PTY,
//     shell, subsystem, port/agent/X11 forwarding); a handshake deadline,
//     x/crypto's MaxAuthTries, connection rate limits per source address and
//     in all, a bound on concurrent connections and sessions. Every decision
//     after authentication is read from the connection's ssh.Permissions,
//     which x/crypto binds to the key that signed (CVE-2024-45337: the
//     public-key callback also sees keys a client cannot sign with).
//   - The verbs (ssh root@host VERB [--json]): help, status, unlock (key on
//     stdin; wrong keys counted and rate-limited), logs [-f], pcrs, reseal,
//     reboot, poweroff, boot-slot A|B, and install in install mode. Each
//     calls the Backend the initrd implements; exit statuses are the Exit*
//     constants.
//   - The SSH host key in the TPM (TPMHostKey, HostKeySigner): an ECC P-256
//     signing key derived with TPM2_CreatePrimary from a fixed template
//     under the owner hierarchy, so the same TPM always yields the same key
//     and nothing is stored. See docs/control.md for the threat model.
//   - ReadKmsg: the kernel log ring, for Backend.Logs; EventLogEvents: the
//     firmware's TPM event log (package control/eventlog) for Backend.PCRs.
//
// What it leaves out: password and keyboard-interactive authentication,
// the authorized_keys options of OpenSSH other than cert-authority and
// principals= (plus its own verbs=), SFTP/SCP, IPv6 DHCP (SLAAC only), and
// DNS (the server needs none).
package control
