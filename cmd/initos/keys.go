package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"initos/efivar"
)

func init() {
	register("keys", "Secure Boot owner keys: create, enroll, status", runKeys)
	describe("keys create", "[--cn NAME] [--owner GUID] [--extra-db ESL [--microsoft]] DIR",
		"Generates the owner's Secure Boot keys into DIR (created 0700): RSA PK, KEK and db keys (NAME.key, PKCS#8 PEM, 0600) with self-signed certificates (NAME.crt PEM, NAME.cer DER), their EFI signature lists (NAME.esl) and the signed authenticated-variable updates that enroll them (db.auth, KEK.auth, PK.auth; noPK.auth clears PK). SOURCE_DATE_EPOCH sets the timestamps. Refuses a DIR that already holds PK.key.")
	describe("keys enroll", "[--efivars DIR] KEYDIR",
		"Writes db, KEK and PK (in that order, PK last) from KEYDIR's .auth files through efivarfs, while the firmware is in setup mode. Secure Boot is enforced from the next boot. Exit status 1 when the firmware is not in setup mode.")
	describe("keys status", "[--efivars DIR] [--json]",
		"Prints SetupMode, SecureBoot and the subjects of the certificates enrolled in PK, KEK and db.")
}

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "keys", map[string]subcommand{
		"create": {"generate PK, KEK, db keys, signature lists and signed .auth updates", keysCreate},
		"enroll": {"write db, KEK and PK (.auth) through efivarfs in setup mode", keysEnroll},
		"status": {"show SetupMode, SecureBoot and enrolled certificates", keysStatus},
	}, args, stdout, stderr)
}

// keysNow is the timestamp for certificates and .auth payloads:
// SOURCE_DATE_EPOCH when set, else the current time.
func keysNow() (time.Time, error) {
	t, ok, err := sourceDateEpoch()
	if !ok && err == nil {
		t = time.Now().UTC().Truncate(time.Second)
	}
	return t, err
}

// sourceDateEpoch returns the time SOURCE_DATE_EPOCH sets for reproducible
// outputs; ok is false when it is unset.
func sourceDateEpoch() (t time.Time, ok bool, err error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Time{}, false, nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("parse SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(sec, 0).UTC(), true, nil
}

func keysCreate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys create", stdout, stderr)
	cn := fs.String("cn", "InitOS owner", "common name prefix of the certificates")
	ownerStr := fs.String("owner", "", "owner `GUID` of the signature list entries (default: random)")
	extraDB := fs.String("extra-db", "", "EFI signature list `FILE` appended to db (e.g. vendor certificates saved from the firmware)")
	microsoft := fs.Bool("microsoft", false, "keep the Microsoft certificates of --extra-db in db (default: drop them; InitOS ships none)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *microsoft && *extraDB == "" {
		return usageError(fs, "--microsoft: InitOS ships no Microsoft certificates; save the firmware's db first (cat /sys/firmware/efi/efivars/db-d719b2cb-3d3a-4596-a3bc-dad00e67656f | tail -c +5 > ms.esl) and pass --extra-db ms.esl")
	}
	owner, err := keysOwner(*ownerStr)
	if err != nil {
		return usageError(fs, "--owner: %v", err)
	}
	extra, err := keysExtraDB(*extraDB, *microsoft, stderr)
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	now, err := keysNow()
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	dir := pos[0]
	if _, err := os.Stat(filepath.Join(dir, "PK.key")); err == nil {
		return fmt.Errorf("keys create: %s already holds keys (PK.key); refusing to overwrite", dir)
	}
	keys, err := efivar.GenerateOwnerKeys(owner, *cn, now)
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	p, err := keys.Payloads(now, extra...)
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	if err := keysWriteDir(dir, keys, p); err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	fmt.Fprintf(stdout, "%s: PK, KEK, db for owner %s\n", dir, owner)
	return nil
}

// keysExtraDB reads the --extra-db signature lists. Microsoft's
// certificates (subject organization "Microsoft Corporation") are kept
// only with --microsoft, which then requires at least one; a note on
// stderr says what was dropped.
func keysExtraDB(path string, microsoft bool, stderr io.Writer) ([]efivar.SignatureList, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lists, err := efivar.ParseSignatureLists(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	kept, ms, err := keysSplitMicrosoft(lists)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case microsoft && ms == 0:
		return nil, fmt.Errorf("--microsoft: %s holds no Microsoft certificate", path)
	case microsoft:
		return lists, nil
	case ms > 0:
		fmt.Fprintf(stderr, "keys create: left out %d Microsoft certificate(s) of %s (--microsoft keeps them)\n", ms, path)
	}
	return kept, nil
}

// keysSplitMicrosoft returns lists without Microsoft's X.509 certificates
// and how many there were.
func keysSplitMicrosoft(lists []efivar.SignatureList) ([]efivar.SignatureList, int, error) {
	var kept []efivar.SignatureList
	n := 0
	for _, l := range lists {
		if l.Type != efivar.CertX509 {
			kept = append(kept, l)
			continue
		}
		var sigs []efivar.Signature
		for _, sig := range l.Signatures {
			c, err := x509.ParseCertificate(sig.Data)
			if err != nil {
				return nil, 0, fmt.Errorf("certificate owned by %v: %w", sig.Owner, err)
			}
			if slices.Contains(c.Subject.Organization, "Microsoft Corporation") {
				n++
				continue
			}
			sigs = append(sigs, sig)
		}
		if len(sigs) > 0 {
			l.Signatures = sigs
			kept = append(kept, l)
		}
	}
	return kept, n, nil
}

func keysOwner(s string) (efivar.GUID, error) {
	if s == "" {
		return efivar.NewRandomGUID()
	}
	return efivar.ParseGUID(s)
}

// keysWriteDir writes NAME.key (PKCS#8 PEM, 0600), NAME.crt (PEM),
// NAME.cer (DER), NAME.esl and NAME.auth for PK, KEK and db, noPK.auth and
// owner.guid.
func keysWriteDir(dir string, k *efivar.OwnerKeys, p *efivar.Payloads) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := map[string][]byte{
		"owner.guid": []byte(k.Owner.String() + "\n"),
		"PK.esl":     p.PKList, "KEK.esl": p.KEKList, "db.esl": p.DBList,
		"PK.auth": p.PK, "KEK.auth": p.KEK, "db.auth": p.DB, "noPK.auth": p.NoPK,
	}
	for name, kp := range map[string]efivar.KeyPair{"PK": k.PK, "KEK": k.KEK, "db": k.DB} {
		der, err := x509.MarshalPKCS8PrivateKey(kp.Key)
		if err != nil {
			return err
		}
		files[name+".key"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		files[name+".crt"] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Cert.Raw})
		files[name+".cer"] = kp.Cert.Raw
	}
	// PK.key goes last: keys create refuses a directory that has it, so a
	// run that fails half-way can be repeated.
	names := slices.Sorted(maps.Keys(files))
	names = append(slices.DeleteFunc(names, func(n string) bool { return n == "PK.key" }), "PK.key")
	for _, name := range names {
		if err := keysWriteFile(filepath.Join(dir, name), files[name]); err != nil {
			return err
		}
	}
	return nil
}

// keysWriteFile writes through a temporary file and a rename; keys are
// private (0600), the rest 0644.
func keysWriteFile(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if filepath.Ext(path) == ".key" {
		mode = 0o600
	}
	return ukiWriteFileMode(path, data, mode)
}

// keysStore opens efivarfs at path, or when path is a plain directory (an
// efivarfs-like copy, as tests use) that directory.
func keysStore(path string) (efivar.Store, error) {
	st, err := efivar.OpenEfivarfs(path)
	if err == nil {
		return st, nil
	}
	if fi, serr := os.Stat(path); path != efivar.DefaultEfivarfs && serr == nil && fi.IsDir() {
		return &efivar.Dir{Path: path}, nil
	}
	return nil, err
}

func efivarsFlag(fs *flag.FlagSet) *string {
	return fs.String("efivars", efivar.DefaultEfivarfs, "efivarfs mount, or an efivarfs-like `DIR`")
}

func keysEnroll(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys enroll", stdout, stderr)
	vars := efivarsFlag(fs)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	var payloads [3][]byte
	for i, name := range []string{"db.auth", "KEK.auth", "PK.auth"} {
		if payloads[i], err = os.ReadFile(filepath.Join(pos[0], name)); err != nil {
			return fmt.Errorf("keys enroll: %w", err)
		}
	}
	store, err := keysStore(*vars)
	if err != nil {
		return fmt.Errorf("keys enroll: %w", err)
	}
	if err := efivar.Enroll(store, payloads[0], payloads[1], payloads[2]); err != nil {
		if errors.Is(err, efivar.ErrNotSetupMode) {
			return &exitError{1, fmt.Errorf("keys enroll: %w", err)}
		}
		return fmt.Errorf("keys enroll: %w", err)
	}
	fmt.Fprintln(stdout, "enrolled db, KEK and PK: Secure Boot is enforced from the next boot")
	return nil
}

// keysStatusJSON is what `keys status --json` prints.
type keysStatusJSON struct {
	SetupMode  uint8      `json:"setup_mode"`
	SecureBoot uint8      `json:"secure_boot"`
	PK         []certJSON `json:"pk"`
	KEK        []certJSON `json:"kek"`
	DB         []certJSON `json:"db"`
}

// certJSON names an enrolled certificate.
type certJSON struct {
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	Serial  string `json:"serial"`
	SHA256  string `json:"sha256"`
}

func certsJSON(certs []*x509.Certificate) []certJSON {
	out := []certJSON{}
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		out = append(out, certJSON{c.Subject.String(), c.Issuer.String(), c.SerialNumber.String(), hex.EncodeToString(sum[:])})
	}
	return out
}

func keysStatus(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys status", stdout, stderr)
	vars := efivarsFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	store, err := keysStore(*vars)
	if err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	st, err := efivar.ReadStatus(store)
	if err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	if *asJSON {
		return writeJSON(stdout, keysStatusJSON{st.SetupMode, st.SecureBoot, certsJSON(st.PK), certsJSON(st.KEK), certsJSON(st.DB)})
	}
	fmt.Fprintf(stdout, "SetupMode=%d\nSecureBoot=%d\n", st.SetupMode, st.SecureBoot)
	for _, v := range []struct {
		name  string
		certs []*x509.Certificate
	}{{"PK", st.PK}, {"KEK", st.KEK}, {"db", st.DB}} {
		if len(v.certs) == 0 {
			fmt.Fprintf(stdout, "%s: (empty)\n", v.name)
		}
		for _, c := range v.certs {
			fmt.Fprintf(stdout, "%s: %s\n", v.name, c.Subject)
		}
	}
	return nil
}
