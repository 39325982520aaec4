package tpm2

import (
	"crypto"
	_ "crypto/sha1"   // the sha1 bank
	_ "crypto/sha512" // the sha384 and sha512 banks
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// NumPCRs is the number of PCRs of a PC Client TPM bank; selections are
// always encoded with 3 bytes, as systemd does (it matters: the selection
// is part of the PolicyPCR digest).
const NumPCRs = 24

// Bank is a PCR bank, named by its hash algorithm.
type Bank = tpm2.TPMIAlgHash

// Banks: systemd 252 seals to sha1 or sha256; measurements go to every
// allocated bank, sha384 and sha512 included.
const (
	SHA1   Bank = tpm2.TPMAlgSHA1
	SHA256 Bank = tpm2.TPMAlgSHA256
	SHA384 Bank = tpm2.TPMAlgSHA384
	SHA512 Bank = tpm2.TPMAlgSHA512
)

var bankNames = []struct {
	bank Bank
	name string
	hash crypto.Hash
}{
	{SHA1, "sha1", crypto.SHA1},
	{SHA256, "sha256", crypto.SHA256},
	{SHA384, "sha384", crypto.SHA384},
	{SHA512, "sha512", crypto.SHA512},
}

// BankName returns the name systemd uses for b ("sha1", "sha256", ...).
func BankName(b Bank) string {
	for _, n := range bankNames {
		if n.bank == b {
			return n.name
		}
	}
	return fmt.Sprintf("alg-0x%04x", uint16(b))
}

// ParseBank parses a bank name ("sha256", "sha1", "sha384", "sha512").
func ParseBank(s string) (Bank, error) {
	for _, n := range bankNames {
		if strings.EqualFold(s, n.name) {
			return n.bank, nil
		}
	}
	return 0, fmt.Errorf("parse PCR bank %q: want sha256, sha1, sha384 or sha512", s)
}

// BankHash returns the hash function of bank b.
func BankHash(b Bank) (crypto.Hash, error) { return bankHash(b) }

func bankHash(b Bank) (crypto.Hash, error) {
	for _, n := range bankNames {
		if n.bank == b {
			return n.hash, nil
		}
	}
	return 0, fmt.Errorf("PCR bank %s: unsupported", BankName(b))
}

// ParsePCRs parses a PCR list as systemd-cryptenroll spells it: indexes
// (or systemd's names, "secure-boot-policy" for 7) separated by "+" or
// ",", e.g. "7+11". The empty string is no PCRs.
// The result is sorted and has no duplicates.
func ParsePCRs(s string) ([]int, error) {
	pcrs := []int{}
	if s == "" {
		return pcrs, nil
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ',' }) {
		n, err := parsePCRIndex(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("parse PCR list %q: %w", s, err)
		}
		pcrs = append(pcrs, n)
	}
	slices.Sort(pcrs)
	return slices.Compact(pcrs), nil
}

// FormatPCRs formats pcrs as "7+11".
func FormatPCRs(pcrs []int) string {
	s := make([]string, len(pcrs))
	for i, p := range pcrs {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, "+")
}

func checkPCRs(pcrs []int) error {
	for _, p := range pcrs {
		if p < 0 || p >= NumPCRs {
			return fmt.Errorf("PCR index %d out of range 0..%d", p, NumPCRs-1)
		}
	}
	return nil
}

// selection encodes one bank's PCRs as a TPML_PCR_SELECTION.
func selection(bank Bank, pcrs []int) tpm2.TPMLPCRSelection {
	sel := make([]byte, NumPCRs/8)
	for _, p := range pcrs {
		sel[p/8] |= 1 << (p % 8)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: bank, PCRSelect: sel}}}
}

// ReadPCRs reads pcrs of bank. The TPM returns at most 8 digests per
// TPM2_PCR_Read, so this loops until every PCR is read.
func ReadPCRs(t transport.TPM, bank Bank, pcrs []int) (map[int][]byte, error) {
	if err := checkPCRs(pcrs); err != nil {
		return nil, fmt.Errorf("read PCRs: %w", err)
	}
	t = withRetry(t)
	out := make(map[int][]byte, len(pcrs))
	for len(out) < len(pcrs) {
		var todo []int
		for _, p := range pcrs {
			if _, ok := out[p]; !ok {
				todo = append(todo, p)
			}
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: selection(bank, todo)}.Execute(t)
		if err != nil {
			return nil, classify(fmt.Sprintf("read PCRs %s of bank %s", FormatPCRs(todo), BankName(bank)), err)
		}
		got := selected(rsp.PCRSelectionOut, bank)
		if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
			return nil, fmt.Errorf("read PCRs %s of bank %s: the TPM returned %d values for %d PCRs", FormatPCRs(todo), BankName(bank), len(rsp.PCRValues.Digests), len(got))
		}
		for i, p := range got {
			out[p] = rsp.PCRValues.Digests[i].Buffer
		}
	}
	return out, nil
}

// selected lists the PCRs of bank in a selection, ascending.
func selected(l tpm2.TPMLPCRSelection, bank Bank) []int {
	var pcrs []int
	for _, s := range l.PCRSelections {
		if s.Hash != bank {
			continue
		}
		for i, b := range s.PCRSelect {
			for bit := range 8 {
				if b&(1<<bit) != 0 {
					pcrs = append(pcrs, i*8+bit)
				}
			}
		}
	}
	return pcrs
}

// ExtendPCR extends pcr of bank with digest (already hashed with the bank's
// algorithm). Extending a bound PCR is how a boot stage locks the key away
// from later stages.
func ExtendPCR(t transport.TPM, bank Bank, pcr int, digest []byte) error {
	if err := checkPCRs([]int{pcr}); err != nil {
		return fmt.Errorf("extend PCR: %w", err)
	}
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: bank, Digest: digest}}},
	}.Execute(t)
	return classify(fmt.Sprintf("extend PCR %d of bank %s", pcr, BankName(bank)), err)
}

// ExtendBanks extends pcr in several banks at once with one
// TPM2_PCR_Extend (digests[bank] already hashed with the bank's hash).
func ExtendBanks(t transport.TPM, pcr int, digests map[Bank][]byte) error {
	if err := checkPCRs([]int{pcr}); err != nil {
		return fmt.Errorf("extend PCR: %w", err)
	}
	var l tpm2.TPMLDigestValues
	for _, n := range bankNames {
		if d, ok := digests[n.bank]; ok {
			l.Digests = append(l.Digests, tpm2.TPMTHA{HashAlg: n.bank, Digest: d})
		}
	}
	if len(l.Digests) != len(digests) {
		return fmt.Errorf("extend PCR %d: unsupported bank among %d digests", pcr, len(digests))
	}
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   l,
	}.Execute(withRetry(t))
	return classify(fmt.Sprintf("extend PCR %d", pcr), err)
}

// AllocatedBanks returns the banks (among sha1, sha256, sha384, sha512)
// in which the TPM has pcr allocated (TPM2_GetCapability(TPM_CAP_PCRS)).
func AllocatedBanks(t transport.TPM, pcr int) ([]Bank, error) {
	if err := checkPCRs([]int{pcr}); err != nil {
		return nil, fmt.Errorf("list PCR banks: %w", err)
	}
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 1}.Execute(withRetry(t))
	if err != nil {
		return nil, classify("list PCR banks", err)
	}
	sel, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("list PCR banks: %w", err)
	}
	var banks []Bank
	for _, n := range bankNames {
		if slices.Contains(selected(*sel, n.bank), pcr) {
			banks = append(banks, n.bank)
		}
	}
	return banks, nil
}

// LockEvent is what Lock measures: after the initrd unsealed the disk key,
// extending the bound PCRs with it makes the policy unsatisfiable for the
// rest of this boot (a later stage cannot unseal again).
const LockEvent = "initos: disk key unsealed, leaving initrd"

// Lock extends each of pcrs of bank with the hash of LockEvent.
func Lock(t transport.TPM, bank Bank, pcrs []int) error {
	h, err := bankHash(bank)
	if err != nil {
		return fmt.Errorf("lock PCRs: %w", err)
	}
	d := h.New()
	d.Write([]byte(LockEvent))
	for _, p := range pcrs {
		if err := ExtendPCR(withRetry(t), bank, p, d.Sum(nil)); err != nil {
			return fmt.Errorf("lock PCRs: %w", err)
		}
	}
	return nil
}
