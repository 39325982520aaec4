package efivar

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	testKeysOnce sync.Once
	testKeysVal  *OwnerKeys
	testOwner    = MustParseGUID("11111111-2222-3333-4444-555555555555")
	testTime     = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
)

func testKeys(t testing.TB) *OwnerKeys {
	t.Helper()
	testKeysOnce.Do(func() {
		k, err := GenerateOwnerKeys(testOwner, "InitOS test", testTime)
		if err != nil {
			t.Fatal(err)
		}
		testKeysVal = k
	})
	if testKeysVal == nil {
		t.Fatal("key generation failed earlier")
	}
	return testKeysVal
}

func TestStructSizes(t *testing.T) {
	tests := []struct {
		name      string
		got, want int
	}{
		{"SignatureListHeader", binary.Size(SignatureListHeader{}), sigListHeaderSize},
		{"Time", binary.Size(Time{}), 16},
		{"WinCertificateUEFIGUID", binary.Size(WinCertificateUEFIGUID{}), 24},
		{"HardDrive", binary.Size(HardDrive{}), 38},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("binary.Size(%s) = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestGUID(t *testing.T) {
	want, _ := hex.DecodeString("61dfe48bca93d211aa0d00e098032b8c")
	if !bytes.Equal(GlobalVariable[:], want) {
		t.Errorf("GlobalVariable bytes = %x, want %x", GlobalVariable[:], want)
	}
	if got := GlobalVariable.String(); got != "8be4df61-93ca-11d2-aa0d-00e098032b8c" {
		t.Errorf("String() = %s", got)
	}
	for _, bad := range []string{"", "8be4df61-93ca-11d2-aa0d", "zzzzzzzz-93ca-11d2-aa0d-00e098032b8c"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) = nil error", bad)
		}
	}
	g, err := NewRandomGUID()
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ParseGUID(g.String()); err != nil || back != g {
		t.Errorf("ParseGUID(%s) = %v, %v, want round trip", g, back, err)
	}
}

func TestSignatureLists(t *testing.T) {
	k := testKeys(t)
	b, err := AppendSignatureLists(nil, X509List(k.Owner, k.PK.Cert), X509List(k.Owner, k.DB.Cert),
		SignatureList{Type: CertSHA256, Signatures: []Signature{{k.Owner, make([]byte, 32)}, {k.Owner, bytes.Repeat([]byte{1}, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	lists, err := ParseSignatureLists(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(lists) != 3 || len(lists[2].Signatures) != 2 || lists[0].Signatures[0].Owner != k.Owner {
		t.Fatalf("ParseSignatureLists() = %+v", lists)
	}
	certs, err := Certificates(lists)
	if err != nil || len(certs) != 2 || !certs[1].Equal(k.DB.Cert) {
		t.Errorf("Certificates() = %d certs, %v", len(certs), err)
	}
	for _, bad := range [][]byte{b[:10], b[:len(b)-1], append(bytes.Clone(b[:28]), 0)} {
		if _, err := ParseSignatureLists(bad); !errors.Is(err, ErrSignatureList) {
			t.Errorf("ParseSignatureLists(%d bytes) = %v, want %v", len(bad), err, ErrSignatureList)
		}
	}
}

func TestSignUpdate(t *testing.T) {
	k := testKeys(t)
	p, err := k.Payloads(testTime)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		varName string
		guid    GUID
		payload []byte
		trusted KeyPair
		wantErr bool
	}{
		{"PK by PK", "PK", GlobalVariable, p.PK, k.PK, false},
		{"KEK by PK", "KEK", GlobalVariable, p.KEK, k.PK, false},
		{"db by KEK", "db", ImageSecurityDB, p.DB, k.KEK, false},
		{"noPK by PK", "PK", GlobalVariable, p.NoPK, k.PK, false},
		{"db not by PK", "db", ImageSecurityDB, p.DB, k.PK, true},
		{"db under another name", "KEK", GlobalVariable, p.DB, k.KEK, true},
		{"db under another GUID", "db", GlobalVariable, p.DB, k.KEK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyUpdate(tt.varName, tt.guid, AuthAttributes, tt.payload, []*x509.Certificate{tt.trusted.Cert})
			if (err != nil) != tt.wantErr {
				t.Errorf("VerifyUpdate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	sp, err := ParseSignedPayload(p.DB)
	if err != nil {
		t.Fatal(err)
	}
	if !sp.Time.GoTime().Equal(testTime) || !bytes.Equal(sp.Data, p.DBList) {
		t.Errorf("ParseSignedPayload(db) = time %v, %d data bytes; want %v, %d", sp.Time.GoTime(), len(sp.Data), testTime, len(p.DBList))
	}
	if _, err := ParseSignedPayload(p.DB[:30]); !errors.Is(err, ErrAuth) {
		t.Errorf("ParseSignedPayload(truncated) = %v, want %v", err, ErrAuth)
	}
}

func TestLoadOption(t *testing.T) {
	o := LoadOption{
		Attributes:  LoadOptionActive,
		Description: "InitOS A",
		FilePath: DevicePath{
			HardDriveNode(HardDrive{PartitionNumber: 1, PartitionStart: 2048, PartitionSize: 1 << 20,
				PartitionSignature: testOwner, PartitionFormat: PartitionFormatGPT, SignatureType: SignatureTypeGUID}),
			FilePathNode("/EFI/Linux/initos-a.efi"),
		},
		OptionalData: []byte{1, 2, 3},
	}
	b, err := o.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got LoadOption
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(o, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	want := `HD(1,GPT,11111111-2222-3333-4444-555555555555,0x800,0x100000)/\EFI\Linux\initos-a.efi`
	if s := got.FilePath.String(); s != want {
		t.Errorf("FilePath.String() = %s, want %s", s, want)
	}
	for _, n := range []int{0, 5, 12, len(b) - 4} {
		if err := new(LoadOption).UnmarshalBinary(b[:n]); !errors.Is(err, ErrLoadOption) {
			t.Errorf("UnmarshalBinary(%d bytes) = %v, want %v", n, err, ErrLoadOption)
		}
	}
}

func TestBootVariables(t *testing.T) {
	s := &Dir{Path: t.TempDir()}
	if err := s.Set("BootCurrent", GlobalVariable, BootserviceAccess|RuntimeAccess, []byte{1, 0}); err != nil {
		t.Fatal(err)
	}
	opt := func(d string) *LoadOption {
		return &LoadOption{Attributes: LoadOptionActive, Description: d, FilePath: DevicePath{FilePathNode(`\EFI\` + d + `.efi`)}}
	}
	for i, d := range []string{"a", "b", "c"} {
		n, err := AddBootEntry(s, opt(d))
		if err != nil || n != uint16(i) {
			t.Fatalf("AddBootEntry(%s) = %d, %v, want %d", d, n, err, i)
		}
	}
	if order, _ := BootOrder(s); !cmp.Equal(order, []uint16{2, 1, 0}) {
		t.Errorf("BootOrder = %v, want [2 1 0]", order)
	}
	if err := SetBootNext(s, 1); err != nil {
		t.Fatal(err)
	}
	if err := RemoveBootEntry(s, 1); err != nil {
		t.Fatal(err)
	}
	if order, _ := BootOrder(s); !cmp.Equal(order, []uint16{2, 0}) {
		t.Errorf("BootOrder after remove = %v, want [2 0]", order)
	}
	if _, ok, _ := BootNext(s); ok {
		t.Error("BootNext still set after removing its entry")
	}
	if cur, ok, err := BootCurrent(s); err != nil || !ok || cur != 1 {
		t.Errorf("BootCurrent() = %d, %v, %v, want 1", cur, ok, err)
	}
	if n, _ := AddBootEntry(s, opt("d")); n != 1 {
		t.Errorf("AddBootEntry reused number %d, want the free 1", n)
	}
	entries, err := BootEntries(s)
	if err != nil || len(entries) != 3 || entries[1].Option.Description != "d" {
		t.Errorf("BootEntries() = %+v, %v", entries, err)
	}
}

func TestEnrollAndStatus(t *testing.T) {
	k := testKeys(t)
	p, err := k.Payloads(testTime)
	if err != nil {
		t.Fatal(err)
	}
	s := &Dir{Path: t.TempDir()}
	if err := Enroll(s, p.DB, p.KEK, p.PK); !errors.Is(err, ErrNotSetupMode) {
		t.Errorf("Enroll(no SetupMode) = %v, want %v", err, ErrNotSetupMode)
	}
	if err := s.Set("SetupMode", GlobalVariable, BootserviceAccess|RuntimeAccess, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := Enroll(s, p.DB, p.KEK, p.PK); err != nil {
		t.Fatal(err)
	}
	attrs, data, err := s.Get("db", ImageSecurityDB)
	if err != nil || attrs != AuthAttributes || !bytes.Equal(data, p.DB) {
		t.Errorf("db = %#x, %d bytes, %v; want %#x and the .auth payload", attrs, len(data), err, AuthAttributes)
	}
	// Read straight after Enroll, the variables hold the .auth payloads.
	if st, err := ReadStatus(s); err != nil || len(st.PK) != 1 || !st.DB[0].Equal(k.DB.Cert) || !st.KEK[0].Equal(k.KEK.Cert) {
		t.Errorf("ReadStatus(after Enroll into a Dir) = %+v, %v, want the enrolled certificates", st, err)
	}
	// The firmware stores only the lists; emulate it to read the status.
	for _, v := range []struct {
		name string
		guid GUID
		list []byte
	}{{"PK", GlobalVariable, p.PKList}, {"KEK", GlobalVariable, p.KEKList}, {"db", ImageSecurityDB, p.DBList}} {
		if err := s.Set(v.name, v.guid, AuthAttributes, v.list); err != nil {
			t.Fatal(err)
		}
	}
	st, err := ReadStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	if st.SetupMode != 1 || len(st.PK) != 1 || !st.DB[0].Equal(k.DB.Cert) || !st.KEK[0].Equal(k.KEK.Cert) {
		t.Errorf("ReadStatus() = %+v", st)
	}
}
