package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"initos/luks2"
)

func luksAddKey(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks add-key", stdout, stderr)
	var pf luksPBKDFFlags
	pf.register(fs)
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
	o := luks2.KeyslotOptions{}
	if o.PBKDF, err = pf.value(); err != nil {
		return err
	}
	if *slot >= 0 {
		o.ID = slot
	}
	newPass, err := readKeyFile("new-key-file", *newKey)
	if err != nil {
		return err
	}
	f, h, vk, err := u.open(pos[0], true)
	if err != nil {
		return err
	}
	defer f.Close()
	defer vk.Destroy()
	id, err := h.AddKey(f, vk.Bytes(), newPass, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Key slot %d created.\n", id)
	return nil
}

// luksUnlockFlags are the two ways a verb that needs the volume key gets
// it: --key-file (a passphrase) or --volume-key-file (the raw key).
type luksUnlockFlags struct{ keyFile, vkFile string }

func (u *luksUnlockFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&u.keyFile, "key-file", "", "existing passphrase `file`")
	fs.StringVar(&u.vkFile, "volume-key-file", "", "unlock with the raw volume key in this `file`")
}

// open opens path (the device or its detached header) for reading (and
// writing), reads the header and gets the volume key. The caller closes f
// and destroys vk.
func (u *luksUnlockFlags) open(path string, write bool) (f *os.File, h *luks2.Header, vk *luks2.Secret, err error) {
	f, h, err = openHeader(path, write)
	if err != nil {
		return nil, nil, nil, err
	}
	if vk, err = luksVolumeKey(f, h, u.keyFile, u.vkFile); err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return f, h, vk, nil
}

// luksVolumeKey unlocks with a passphrase file or reads a volume key file.
func luksVolumeKey(f *os.File, h *luks2.Header, keyFile, vkFile string) (*luks2.Secret, error) {
	if vkFile != "" {
		b, err := readKeyFile("volume-key-file", vkFile)
		if err != nil {
			return nil, err
		}
		vk := luks2.SecretFrom(b)
		clear(b)
		if err := h.VerifyVolumeKey(vk.Bytes()); err != nil {
			vk.Destroy()
			return nil, wrongKey(err)
		}
		return vk, nil
	}
	pass, err := readKeyFile("key-file", keyFile)
	if err != nil {
		return nil, err
	}
	vk, _, err := h.Unlock(f, pass)
	clear(pass)
	if err != nil {
		return nil, wrongKey(err)
	}
	return vk, nil
}

func luksRemoveKey(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks remove-key", stdout, stderr)
	keyFile := fs.String("key-file", "", "passphrase `file` of the keyslot to remove")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, pass, err := openWithPass(pos[0], true, *keyFile)
	if err != nil {
		return err
	}
	defer f.Close()
	id, err := h.RemoveKey(f, pass)
	if err != nil {
		return wrongKey(err)
	}
	fmt.Fprintf(stdout, "Key slot %d removed.\n", id)
	return nil
}

func luksChangeKey(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks change-key", stdout, stderr)
	var pf luksPBKDFFlags
	pf.register(fs)
	keyFile := fs.String("key-file", "", "current passphrase `file`")
	newKey := fs.String("new-key-file", "", "new passphrase `file` (or NEWKEYFILE)")
	pos, err := parseFlags(fs, args, 1, 2)
	if err != nil {
		return err
	}
	if len(pos) == 2 {
		*newKey = pos[1]
	}
	var o luks2.KeyslotOptions
	if o.PBKDF, err = pf.value(); err != nil {
		return err
	}
	newPass, err := readKeyFile("new-key-file", *newKey)
	if err != nil {
		return err
	}
	f, h, old, err := openWithPass(pos[0], true, *keyFile)
	if err != nil {
		return err
	}
	defer f.Close()
	id, err := h.ChangeKey(f, old, newPass, o)
	if err != nil {
		return wrongKey(err)
	}
	fmt.Fprintf(stdout, "Key slot %d changed.\n", id)
	return nil
}

func luksKillSlot(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks kill-slot", stdout, stderr)
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	id, err := strconv.Atoi(pos[1])
	if err != nil {
		return fmt.Errorf("%w: keyslot %q is not a number", errUsage, pos[1])
	}
	f, h, err := openHeader(pos[0], true)
	if err != nil {
		return err
	}
	defer f.Close()
	return h.KillSlot(f, id)
}

// luksToken dispatches "initos luks token add|remove|list" (with --help).
func luksToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]subcommand{
		"add":    {"add a token: [--token-id N] --json-file F|- DEVICE", luksTokenVerb("add")},
		"remove": {"remove a token: --token-id N DEVICE", luksTokenVerb("remove")},
		"list":   {"print each token's id and JSON: DEVICE", luksTokenVerb("list")},
	}
	return dispatch(ctx, "luks token", subs, args, stdout, stderr)
}

func luksTokenVerb(verb string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(_ context.Context, args []string, stdout, stderr io.Writer) error {
		return luksTokenRun(verb, args, stdout, stderr)
	}
}

func luksTokenRun(verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks token "+verb, stdout, stderr)
	jsonFile := fs.String("json-file", "", "token JSON `file` (add; - for stdin)")
	id := fs.Int("token-id", -1, "token `id` (add: default lowest free; remove: required)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if verb == "remove" && *id < 0 {
		return fmt.Errorf("%w: luks token remove: --token-id is required", errUsage)
	}
	f, h, err := openHeader(pos[0], verb != "list")
	if err != nil {
		return err
	}
	defer f.Close()
	switch verb {
	case "add":
		b, err := readKeyFile("json-file", *jsonFile)
		if err != nil {
			return err
		}
		n, err := h.AddToken(f, *id, b)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Token %d created.\n", n)
		return nil
	case "remove":
		return h.RemoveToken(f, *id)
	default: // list
		ids, _ := h.Tokens()
		for _, i := range ids {
			fmt.Fprintf(stdout, "%s\t%s\n", i, h.Meta.Tokens[i])
		}
		return nil
	}
}

func luksHeaderBackup(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks header-backup", stdout, stderr)
	file := fs.String("header-backup-file", "", "backup `file` to create")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: --header-backup-file is required", errUsage)
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
		return fmt.Errorf("%w: --header-backup-file is required", errUsage)
	}
	return luks2.RestoreFile(*file, pos[0], *force)
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

// printLuksHeader prints a luksDump-like summary.
func printLuksHeader(w io.Writer, h *luks2.Header) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "Version:\t2\nEpoch:\t%d\nMetadata area:\t%d [bytes]\nKeyslots area:\t%d [bytes]\n",
		h.Binary.SeqID, h.MetadataSize(), h.Meta.Config.KeyslotsSize)
	fmt.Fprintf(tw, "UUID:\t%s\nLabel:\t%s\nSubsystem:\t%s\n", h.UUID(), h.Label(), h.Subsystem())
	for _, e := range []error{h.PrimaryErr, h.SecondaryErr} {
		if e != nil {
			fmt.Fprintf(tw, "Damaged:\t%v\n", e)
		}
	}
	for _, id := range sortedKeys(h.Meta.Segments) {
		s := h.Meta.Segments[id]
		fmt.Fprintf(tw, "Segment %s:\t%s offset %d size %s sector %d\n", id, s.Encryption, s.Offset, s.Size, s.SectorSize)
	}
	for _, id := range sortedKeys(h.Meta.Keyslots) {
		k := h.Meta.Keyslots[id]
		fmt.Fprintf(tw, "Keyslot %s:\tkey %d bits, %s %s, area %d+%d%s\n", id, k.KeySize*8, k.KDF.Type, kdfCost(k.KDF), k.Area.Offset, k.Area.Size, priorityNote(k.Priority))
	}
	for _, id := range sortedKeys(h.Meta.Digests) {
		d := h.Meta.Digests[id]
		fmt.Fprintf(tw, "Digest %s:\t%s %s iterations %d, keyslots %s, segments %s\n", id, d.Type, d.Hash, d.Iterations, idList(d.Keyslots), idList(d.Segments))
	}
	for _, id := range sortedKeys(h.Meta.Tokens) {
		t := h.Meta.Tokens[id]
		var tok struct {
			Type     string
			Keyslots []string
		}
		_ = json.Unmarshal(t, &tok)
		fmt.Fprintf(tw, "Token %s:\t%s, keyslots %s\n", id, tok.Type, idList(tok.Keyslots))
	}
	return tw.Flush()
}

// priorityNote describes a keyslot priority other than normal, as
// cryptsetup's luksDump does.
func priorityNote(p *int) string {
	switch {
	case p == nil || *p == 1:
		return ""
	case *p == 0:
		return ", priority ignore"
	case *p == 2:
		return ", priority preferred"
	}
	return fmt.Sprintf(", priority %d", *p)
}

// idList prints keyslot or segment ids, "-" for none.
func idList(ids []string) string {
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, ",")
}

// sortedKeys returns the decimal id keys of m in numeric order.
func sortedKeys[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, _ := strconv.Atoi(ids[i])
		b, _ := strconv.Atoi(ids[j])
		return a < b
	})
	return ids
}

func kdfCost(k luks2.KDF) string {
	if k.Type == "pbkdf2" {
		return fmt.Sprintf("%s iterations %d", k.Hash, k.Iterations)
	}
	return fmt.Sprintf("time %d memory %d KiB cpus %d", k.Time, k.Memory, k.CPUs)
}

func luksAddRecoveryKey(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks add-recovery-key", stdout, stderr)
	var u luksUnlockFlags
	u.register(fs)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, vk, err := u.open(pos[0], true)
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
