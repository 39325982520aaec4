package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"initos/internal/atomicfile"
	"initos/luks2"
)

func init() {
	describe("luks token add", "[--token-id N] --json-file F|- DEVICE",
		"Adds a token: a JSON object with a string \"type\" and a \"keyslots\" array of existing keyslot ids (cryptsetup token import), under --token-id or the lowest free id.")
	describe("luks token remove", "--token-id N DEVICE", "Removes token N.")
	describe("luks token list", "[--token-id N] [--json-file F] [--json] DEVICE",
		"Prints each token's id and JSON (only token N with --token-id). --json-file F writes the token (with --token-id) or an object of all tokens by id to a new file F instead, as cryptsetup token export does; --json prints id, type, keyslots and the token.")
}

// luksToken dispatches "initos luks token add|remove|list" (with --help).
func luksToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]subcommand{
		"add":    {"add a token: [--token-id N] --json-file F|- DEVICE", luksTokenAdd},
		"remove": {"remove a token: --token-id N DEVICE", luksTokenRemove},
		"list":   {"print tokens: [--token-id N] [--json-file F] [--json] DEVICE", luksTokenList},
	}
	return dispatch(ctx, "luks token", subs, args, stdout, stderr)
}

func luksTokenAdd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks token add", stdout, stderr)
	jsonFile := fs.String("json-file", "", "token JSON `file` (- for stdin)")
	id := fs.Int("token-id", -1, "token `id` (default: lowest free)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *jsonFile == "" {
		return usageError(fs, "--json-file is required")
	}
	b, err := readKeyFile("json-file", *jsonFile)
	if err != nil {
		return err
	}
	f, h, err := openHeader(pos[0], true)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := h.AddToken(f, *id, b)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Token %d created.\n", n)
	return nil
}

func luksTokenRemove(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks token remove", stdout, stderr)
	id := fs.Int("token-id", -1, "token `id` (required)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *id < 0 {
		return usageError(fs, "--token-id is required")
	}
	f, h, err := openHeader(pos[0], true)
	if err != nil {
		return err
	}
	defer f.Close()
	return h.RemoveToken(f, *id)
}

// tokenJSON is one token in token list --json.
type tokenJSON struct {
	ID       int             `json:"id"`
	Type     string          `json:"type"`
	Keyslots []string        `json:"keyslots"`
	Token    json.RawMessage `json:"token"`
}

func luksTokenList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks token list", stdout, stderr)
	id := fs.Int("token-id", -1, "list only token `id`")
	jsonFile := fs.String("json-file", "", "write the token(s) to this new `file` instead of printing them")
	asJSON := fs.Bool("json", false, "print id, type, keyslots and JSON of each token")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, err := openHeader(pos[0], false)
	if err != nil {
		return err
	}
	defer f.Close()
	ids, toks := h.Tokens()
	if *id >= 0 {
		i := sort.SearchStrings(ids, strconv.Itoa(*id))
		if i == len(ids) || ids[i] != strconv.Itoa(*id) {
			return fmt.Errorf("%s: no token %d", pos[0], *id)
		}
		ids, toks = ids[i:i+1], toks[i:i+1]
	}
	switch {
	case *jsonFile != "":
		return exportTokens(*jsonFile, h, ids, *id >= 0)
	case *asJSON:
		list := []tokenJSON{}
		for i, tid := range ids {
			n, _ := strconv.Atoi(tid)
			list = append(list, tokenJSON{n, toks[i].Type, toks[i].Keyslots, h.Meta.Tokens[tid]})
		}
		return writeJSON(stdout, list)
	}
	for _, tid := range ids {
		fmt.Fprintf(stdout, "%s\t%s\n", tid, h.Meta.Tokens[tid])
	}
	return nil
}

// exportTokens writes one token's JSON, or an object of all tokens by id,
// to a new file (atomically).
func exportTokens(path string, h *luks2.Header, ids []string, one bool) error {
	var b []byte
	if one {
		b = append([]byte(h.Meta.Tokens[ids[0]]), '\n')
	} else {
		all := map[string]json.RawMessage{}
		for _, tid := range ids {
			all[tid] = h.Meta.Tokens[tid]
		}
		var err error
		if b, err = json.MarshalIndent(all, "", "  "); err != nil {
			return err
		}
		b = append(b, '\n')
	}
	return atomicfile.WriteFile(path, b, 0o644)
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
	if err := h.Unsupported(); err != nil {
		fmt.Fprintf(tw, "Unsupported:\t%v\n", err)
	}
	for _, id := range sortedKeys(h.Meta.Segments) {
		s := h.Meta.Segments[id]
		fmt.Fprintf(tw, "Segment %s:\t%s offset %d size %s sector %d\n", id, s.Encryption, s.Offset, s.Size, s.SectorSize)
	}
	for _, id := range sortedKeys(h.Meta.Keyslots) {
		k := h.Meta.Keyslots[id]
		n, _ := strconv.Atoi(id)
		fmt.Fprintf(tw, "Keyslot %s:\t%s key %d bits, %s %s, area %d+%d%s%s\n", id, k.Type, k.KeySize*8, k.KDF.Type, kdfCost(k.KDF), k.Area.Offset, k.Area.Size, priorityNote(k.Priority), unusableNote(h, n))
	}
	for _, id := range sortedKeys(h.Meta.Digests) {
		d := h.Meta.Digests[id]
		fmt.Fprintf(tw, "Digest %s:\t%s %s iterations %d, keyslots %s, segments %s\n", id, d.Type, d.Hash, d.Iterations, idList(d.Keyslots), idList(d.Segments))
	}
	ids, toks := h.Tokens()
	for i, id := range ids {
		var t luks2.Token
		if toks[i] != nil {
			t = *toks[i]
		}
		fmt.Fprintf(tw, "Token %s:\t%s, keyslots %s\n", id, t.Type, idList(t.Keyslots))
	}
	return tw.Flush()
}

// unusableNote says why a keyslot cannot be opened, if so.
func unusableNote(h *luks2.Header, id int) string {
	if err := h.KeyslotUsable(id); err != nil {
		return ", unusable: " + strings.TrimPrefix(err.Error(), fmt.Sprintf("keyslot %d: ", id))
	}
	return ""
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
	switch k.Type {
	case "pbkdf2":
		return fmt.Sprintf("%s iterations %d", k.Hash, k.Iterations)
	case "argon2i", "argon2id":
		return fmt.Sprintf("time %d memory %d KiB cpus %d", k.Time, k.Memory, k.CPUs)
	}
	return ""
}
