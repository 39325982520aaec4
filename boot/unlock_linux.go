package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	gotpm "github.com/google/go-tpm/tpm2"

	"initos/enroll"
	"initos/luks2"
)

// settleTime is how long the set of disks must stay the same, once a
// LUKS volume showed up, before unlocking starts (a second disk of a
// raid1 may probe a little later).
const settleTime = 300 * time.Millisecond

// unlock is the "unlock" step: find the LUKS2 volumes (one per disk, by
// GPT type), unseal each one's volume key with its systemd-tpm2 token
// under the signed PCR 11 policy, check each is bound to this machine,
// then open them with dm-crypt, extending PCR 15 right after each opens.
// Every volume is unsealed before the first measurement: after it no
// unseal can succeed in this boot.
func (b *Boot) unlock(ctx context.Context) error {
	if b.Volumes == nil { // a retry keeps what the control plane unlocked
		vols, err := b.findVolumes(ctx)
		if err != nil {
			return err
		}
		b.Volumes = vols
	}
	vols := b.Volumes
	sig, key := b.readPCRPolicy()
	for _, v := range vols {
		if v.key != nil || v.State == VolumeOpen {
			continue
		}
		if b.tpm == nil {
			return v.fail(fmt.Errorf("%w: cannot unseal the key of %s (the TPM driver found no device)", ErrNoTPM, describeVolumes(vols)))
		}
		if err := b.unlockVolume(ctx, v, sig, key); err != nil {
			return err
		}
	}
	if err := b.loadCryptModules(vols); err != nil {
		return err
	}
	for _, v := range vols {
		if v.State == VolumeOpen {
			continue
		}
		if err := b.openVolume(v); err != nil {
			return err
		}
	}
	return nil
}

// findVolumes waits for the LUKS partitions and reads their headers.
func (b *Boot) findVolumes(ctx context.Context) ([]*Volume, error) {
	var parts []Partition
	var stableSince time.Time
	var seen string
	_, err := waitFor(ctx, b.Config.Unlock.DeviceTimeout(), func() (bool, error) {
		all, _ := scanPartitions(filepath.Join(b.paths.Sys, "class/block"), b.paths.Dev)
		parts = luksPartitions(all)
		key := fmt.Sprint(parts)
		if key != seen {
			seen, stableSince = key, time.Now()
		}
		return len(parts) > 0 && b.wanted(parts) && time.Since(stableSince) >= settleTime, nil
	})
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("volume not found: no partition of the InitOS LUKS type %s after %v", TypeLUKS, b.Config.Unlock.DeviceTimeout())
	}
	return b.readVolumes(parts)
}

// luksPartitions keeps the partitions of the InitOS LUKS type.
func luksPartitions(parts []Partition) []Partition {
	var out []Partition
	for _, p := range parts {
		if p.Type == TypeLUKS {
			out = append(out, p)
		}
	}
	return out
}

// wanted reports whether every UUID the config requires is among parts;
// without a list any partition will do. UUIDs are checked on the headers,
// so here the count is what matters.
func (b *Boot) wanted(parts []Partition) bool {
	return len(parts) >= len(b.Config.Unlock.UUIDs)
}

// readVolumes reads the LUKS2 header of each partition.
func (b *Boot) readVolumes(parts []Partition) ([]*Volume, error) {
	want := b.Config.Unlock.UUIDs
	var vols []*Volume
	for _, p := range parts {
		h, err := luks2.ReadHeaderFile(p.Device)
		if err != nil {
			return vols, fmt.Errorf("volume %s (%s): %w", p.Device, p.Name, err)
		}
		uuid := strings.ToLower(h.UUID())
		if len(want) > 0 && !slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(w, uuid) }) {
			b.Log.Printf("unlock: %s: LUKS UUID %s is not in the config's unlock.uuids: skipped", p.Device, uuid)
			continue
		}
		v := &Volume{Partition: p, Header: h, UUID: uuid, Name: volumeName(uuid), State: VolumeFound}
		vols = append(vols, v)
		b.Log.Printf("unlock: found LUKS2 volume %s on %s", uuid, p.Device)
	}
	for _, w := range want {
		if !slices.ContainsFunc(vols, func(v *Volume) bool { return strings.EqualFold(v.UUID, w) }) {
			return vols, fmt.Errorf("volume not found: LUKS UUID %s (unlock.uuids) is on no disk", w)
		}
	}
	if len(vols) == 0 {
		return nil, errors.New("volume not found: no LUKS2 volume left to open")
	}
	return vols, nil
}

// readPCRPolicy reads the UKI's signed PCR policy and its public key,
// which systemd-stub passed into the initrd.
func (b *Boot) readPCRPolicy() (sig, key []byte) {
	sig, err := os.ReadFile(b.paths.PCRSignature)
	if err != nil {
		b.Log.Printf("unlock: no signed PCR policy: %v", err)
	}
	key, err = os.ReadFile(b.paths.PCRPublicKey)
	if err != nil {
		b.Log.Printf("unlock: no PCR public key: %v", err)
	}
	return sig, key
}

// unlockVolume unseals v's key and checks its binding to this machine.
func (b *Boot) unlockVolume(ctx context.Context, v *Volume, sig, key []byte) error {
	var vk *luks2.Secret
	err := b.quietTPM(func() (err error) { vk, err = b.tpm.UnlockVolume(ctx, v, sig); return err })
	if err != nil {
		return v.fail(fmt.Errorf("volume %s (%s): %w", v.UUID, v.Device, b.hintSecureBoot(err)))
	}
	v.key = vk
	b.Log.Printf("unlock: volume %s: the TPM unsealed its key, checking its binding", v.UUID)
	if err := b.quietTPM(func() error { return b.tpm.VerifyBinding(v, vk, sig, key) }); err != nil {
		if !(b.Config.Unlock.AllowUnbound && errors.Is(err, ErrUnbound)) {
			v.wipe()
			return v.fail(fmt.Errorf("volume %s (%s): %w", v.UUID, v.Device, err))
		}
		b.Log.Printf("unlock: volume %s: %v (allowed by unlock.allow_unbound)", v.UUID, err)
	}
	v.State = VolumeUnlocked
	b.Log.Printf("unlock: volume %s: bound to this machine", v.UUID)
	return nil
}

// quietTPM runs fn, which uses a TPM policy session, with no module load
// in flight (the background coldplug waits), and again when the TPM says
// a PCR changed during the session (TPM_RC_PCR_CHANGED: an extend from
// elsewhere, IMA measuring a module say).
func (b *Boot) quietTPM(fn func() error) error {
	if b.mods != nil {
		b.mods.gate.Lock()
		defer b.mods.gate.Unlock()
	}
	var err error
	for try := 0; try < 4; try++ {
		if err = fn(); !errors.Is(err, gotpm.TPMRCPCRChanged) {
			return err
		}
		b.Log.Printf("unlock: a PCR changed during the TPM session: again")
	}
	return err
}

// ErrUnbound reports a volume without an InitOS binding token.
var ErrUnbound = enroll.ErrUnbound

// loadCryptModules loads dm-crypt and the ciphers of the volumes.
func (b *Boot) loadCryptModules(vols []*Volume) error {
	if err := b.loadModules("dm-crypt"); err != nil {
		return err
	}
	for _, v := range vols {
		if s := v.Header.Meta.Segments["0"]; s != nil {
			b.mods.loadAll(b.index, cryptModules(s.Encryption)) // alternatives may fail
		}
	}
	return nil
}

// activateCrypt maps v with dm-crypt as /dev/mapper/NAME.
func activateCrypt(v *Volume) (string, error) {
	return v.Header.Activate(v.Name, v.Device, v.key, luks2.ActivateOptions{AllowDiscards: true})
}

// openVolume maps v with dm-crypt and measures it, then wipes its key
// (a key from the control plane is kept for reseal until the handover).
func (b *Boot) openVolume(v *Volume) error {
	if !v.manual {
		defer v.wipe()
	}
	activate := b.activate
	if activate == nil {
		activate = activateCrypt
	}
	node, err := activate(v)
	if err != nil {
		return v.fail(fmt.Errorf("volume %s: dm-crypt: %w", v.UUID, err))
	}
	v.Mapper = node
	pcr := b.Config.Unlock.PCR()
	if b.tpm == nil { // opened with a key from the control plane
		v.State = VolumeOpen
		b.Log.Printf("unlock: volume %s open as %s, not measured: no TPM", v.UUID, node)
		return nil
	}
	if err := b.tpm.MeasureVolume(v, v.key, pcr); err != nil {
		if b.activate == nil {
			luks2.Deactivate(v.Name)
		}
		return v.fail(fmt.Errorf("volume %s: measure into PCR %d: %w (closed again: a boot that cannot lock the TPM policy must not continue)", v.UUID, pcr, err))
	}
	v.State = VolumeOpen
	b.Log.Printf("unlock: volume %s open as %s, measured into PCR %d", v.UUID, node, pcr)
	return nil
}

func describeVolumes(vols []*Volume) string {
	names := make([]string, len(vols))
	for i, v := range vols {
		names[i] = v.UUID
	}
	return "volume " + strings.Join(names, ", ")
}

// secureBootVar is the EFI global variable SecureBoot in efivarfs.
const secureBootVar = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

// hintSecureBoot adds the firmware's Secure Boot state to a PCR 7
// mismatch: the usual reason is Secure Boot turned off or its keys changed.
func (b *Boot) hintSecureBoot(err error) error {
	var pm *PCRMismatchError
	if !errors.As(err, &pm) {
		return err
	}
	for i, m := range pm.PCRs {
		if m.PCR != 7 || m.Why != "" {
			continue
		}
		raw, rerr := os.ReadFile(filepath.Join(b.paths.Sys, efivarsDir, secureBootVar))
		switch {
		case rerr != nil:
			pm.PCRs[i].Why = "Secure Boot state unknown: " + rerr.Error()
		case len(raw) == 5 && raw[4] == 1:
			pm.PCRs[i].Why = "Secure Boot is on: its keys (PK, KEK, db, dbx) or the signer of this UKI changed"
		default:
			pm.PCRs[i].Why = "Secure Boot is off"
		}
	}
	return err
}
