package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"initos/internal/progress"
	"initos/luks2"
)

func init() {
	describe("luks add-key", "(--key-file OLD | --volume-key-file VK) [--key-slot N] [PBKDF FLAGS] DEVICE NEWKEYFILE",
		"Adds a keyslot for the passphrase in NEWKEYFILE (or --new-key-file), unlocking the volume key with an existing passphrase or the raw volume key. The new keyslot's material is written to a free area before the header that refers to it; an interrupt before that writes nothing.")
	describe("luks remove-key", "[--force] --key-file F DEVICE",
		"Removes the keyslot the passphrase opens. Removing the last keyslot leaves a volume nobody can open: it is refused unless --force (or -q/--batch-mode), or YES is typed on a terminal.")
	describe("luks change-key", "--key-file OLD [PBKDF FLAGS] DEVICE NEWKEYFILE",
		"Replaces the passphrase of the keyslot OLD opens: the new material goes to a free area, the header then points the same keyslot id at it, and only then is the old area wiped.")
	describe("luks kill-slot", "[--force] DEVICE SLOT",
		"Removes keyslot SLOT like cryptsetup luksKillSlot: its area is overwritten with random bytes and synced before the header drops it, and digests and tokens forget it. The last keyslot needs --force (or YES on a terminal).")
	describe("luks header-backup", "--header-backup-file F DEVICE",
		"Saves both header copies and the keyslots area (what cryptsetup luksHeaderBackup saves) to a new file F, mode 0600, written atomically.")
	describe("luks header-restore", "[--force] --header-backup-file F DEVICE",
		"Writes a header backup back onto DEVICE (opened exclusively): keyslots area, then secondary, then primary header. A device whose header has another UUID needs --force.")
	describe("luks repair", "DEVICE", "Rewrites both header copies from the valid one with the highest seqid, reporting what was wrong with the other.")
	describe("luks add-recovery-key", "(--key-file F | --volume-key-file VK) DEVICE",
		"Adds a systemd-style recovery key (64 modhex characters, printed on stdout) in a new keyslot, with a systemd-recovery token, as systemd-cryptenroll --recovery-key does.")
}

// luksKeyslotFlags are the flags of verbs that make a keyslot.
type luksKeyslotFlags struct {
	pf           luksPBKDFFlags
	showProgress *bool
	bar          *progress.Stages
}

func (k *luksKeyslotFlags) register(fs *flag.FlagSet) {
	k.pf.register(fs)
	k.showProgress = fs.Bool("progress", true, "show the PBKDF calibration on a terminal")
}

// options returns the keyslot options; the caller calls k.bar.Finish.
func (k *luksKeyslotFlags) options(fs *flag.FlagSet, stderr io.Writer) (luks2.KeyslotOptions, error) {
	p, err := k.pf.value(fs)
	k.bar = newKDFBar(stderr, *k.showProgress)
	return luks2.KeyslotOptions{PBKDF: p, Progress: k.bar.Update}, err
}

func luksAddKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks add-key", stdout, stderr)
	var kf luksKeyslotFlags
	kf.register(fs)
	var u luksUnlockFlags
	u.register(fs)
	newKey := fs.String("new-key-file", "", "new passphrase `file` (or NEWKEYFILE)")
	slot := fs.Int("key-slot", -1, "keyslot `id` for the new key (default: lowest free)")
	pos, err := parseFlags(fs, args, 1, 2)
	if err != nil {
		return err
	}
	if len(pos) == 2 {
		*newKey = pos[1]
	}
	o, err := kf.options(fs, stderr)
	if err != nil {
		return err
	}
	defer kf.bar.Finish()
	if *slot >= 0 {
		o.ID = slot
	}
	newPass, err := readKeyFile("new-key-file", *newKey)
	if err != nil {
		return err
	}
	defer clear(newPass)
	f, h, vk, err := u.open(ctx, pos[0], true)
	if err != nil {
		return err
	}
	defer f.Close()
	defer vk.Destroy()
	id, err := h.AddKeyContext(ctx, f, vk.Bytes(), newPass, o)
	if err != nil {
		return err
	}
	kf.bar.Finish()
	fmt.Fprintf(stdout, "Key slot %d created.\n", id)
	return nil
}

// luksUnlockFlags are the two ways a verb that needs the volume key gets
// it: --key-file (a passphrase) or --volume-key-file (the raw key).
type luksUnlockFlags struct{ keyFile, vkFile string }

func (u *luksUnlockFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&u.keyFile, "key-file", "", "existing passphrase `file` (- for stdin)")
	fs.StringVar(&u.vkFile, "volume-key-file", "", "unlock with the raw volume key in this `file`")
}

// open opens path (the device or its detached header) for reading (and
// writing), reads the header and gets the volume key. The caller closes f
// and destroys vk.
func (u *luksUnlockFlags) open(ctx context.Context, path string, write bool) (f *os.File, h *luks2.Header, vk *luks2.Secret, err error) {
	f, h, err = openHeader(path, write)
	if err != nil {
		return nil, nil, nil, err
	}
	if vk, err = luksVolumeKey(ctx, f, h, u.keyFile, u.vkFile); err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return f, h, vk, nil
}

// luksVolumeKey unlocks with a passphrase file or reads a volume key file.
func luksVolumeKey(ctx context.Context, f *os.File, h *luks2.Header, keyFile, vkFile string) (*luks2.Secret, error) {
	if vkFile != "" {
		b, err := readKeyFile("volume-key-file", vkFile)
		if err != nil {
			return nil, err
		}
		vk := luks2.SecretFrom(b)
		clear(b)
		if err := h.VerifyVolumeKey(vk.Bytes()); err != nil {
			vk.Destroy()
			return nil, luksExit(err)
		}
		return vk, nil
	}
	pass, err := readKeyFile("key-file", keyFile)
	if err != nil {
		return nil, err
	}
	vk, _, err := h.UnlockContext(ctx, f, pass)
	clear(pass)
	if err != nil {
		return nil, luksExit(err)
	}
	return vk, nil
}

func luksRemoveKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks remove-key", stdout, stderr)
	keyFile := fs.String("key-file", "", "passphrase `file` of the keyslot to remove (- for stdin)")
	force := batchFlags(fs, "remove the last keyslot")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, pass, err := openWithPass(pos[0], true, *keyFile)
	if err != nil {
		return err
	}
	defer f.Close()
	vk, id, err := h.UnlockContext(ctx, f, pass)
	clear(pass)
	if err != nil {
		return luksExit(err)
	}
	vk.Destroy()
	if err := luksKill(h, f, id, *force, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Key slot %d removed.\n", id)
	return nil
}

// luksKill kills keyslot id, asking first (or refusing) when it is the
// last one, as cryptsetup does.
func luksKill(h *luks2.Header, f *os.File, id int, force bool, stderr io.Writer) error {
	if ids := h.KeyslotIDs(); len(ids) == 1 && ids[0] == id {
		msg := fmt.Sprintf("keyslot %d is the last keyslot of %s: removing it leaves a volume nobody can open", id, f.Name())
		if err := destructive(stderr, force, "This is the last keyslot. Device will become unusable after purging this key.", msg); err != nil {
			return err
		}
	}
	return h.KillSlot(f, id)
}

func luksChangeKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks change-key", stdout, stderr)
	var kf luksKeyslotFlags
	kf.register(fs)
	keyFile := fs.String("key-file", "", "current passphrase `file` (- for stdin)")
	newKey := fs.String("new-key-file", "", "new passphrase `file` (or NEWKEYFILE)")
	pos, err := parseFlags(fs, args, 1, 2)
	if err != nil {
		return err
	}
	if len(pos) == 2 {
		*newKey = pos[1]
	}
	o, err := kf.options(fs, stderr)
	if err != nil {
		return err
	}
	defer kf.bar.Finish()
	newPass, err := readKeyFile("new-key-file", *newKey)
	if err != nil {
		return err
	}
	defer clear(newPass)
	f, h, old, err := openWithPass(pos[0], true, *keyFile)
	if err != nil {
		return err
	}
	defer f.Close()
	defer clear(old)
	id, err := h.ChangeKeyContext(ctx, f, old, newPass, o)
	if err != nil {
		return luksExit(err)
	}
	kf.bar.Finish()
	fmt.Fprintf(stdout, "Key slot %d changed.\n", id)
	return nil
}

func luksKillSlot(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks kill-slot", stdout, stderr)
	force := batchFlags(fs, "kill the last keyslot")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	id, err := strconv.Atoi(pos[1])
	if err != nil || id < 0 {
		return usageError(fs, "keyslot %q is not a number", pos[1])
	}
	f, h, err := openHeader(pos[0], true)
	if err != nil {
		return err
	}
	defer f.Close()
	return luksKill(h, f, id, *force, stderr)
}

func luksHeaderBackup(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks header-backup", stdout, stderr)
	file := fs.String("header-backup-file", "", "backup `file` to create")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *file == "" {
		return usageError(fs, "--header-backup-file is required")
	}
	return luks2.BackupFile(pos[0], *file)
}

func luksHeaderRestore(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks header-restore", stdout, stderr)
	file := fs.String("header-backup-file", "", "backup `file` to restore")
	force := fs.Bool("force", false, "restore even if the device has a header with another UUID")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *file == "" {
		return usageError(fs, "--header-backup-file is required")
	}
	return luksExit(luks2.RestoreFile(*file, pos[0], *force))
}

func luksRepair(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks repair", stdout, stderr)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, err := openHeader(pos[0], true)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, e := range []error{h.PrimaryErr, h.SecondaryErr} {
		if e != nil {
			fmt.Fprintln(stdout, "repairing:", e)
		}
	}
	return h.Write(f)
}

func luksAddRecoveryKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks add-recovery-key", stdout, stderr)
	var u luksUnlockFlags
	u.register(fs)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, vk, err := u.open(ctx, pos[0], true)
	if err != nil {
		return err
	}
	defer f.Close()
	defer vk.Destroy()
	key, id, err := h.AddRecoveryKey(f, vk.Bytes(), nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Recovery key added to keyslot %d.\n", id)
	fmt.Fprintln(stdout, key)
	return nil
}
