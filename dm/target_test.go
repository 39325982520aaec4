package dm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var digest = bytes.Repeat([]byte{0xab}, 32)

func TestParams(t *testing.T) {
	rootHex := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		target  Target
		sectors uint64
		want    string
	}{
		{"linear", Linear{Length: 2048, Device: "/dev/vda", Offset: 34}, 2048, "/dev/vda 34"},
		{"verity defaults", Verity{DataDevice: "/dev/loop0", HashDevice: "/dev/loop1", DataBlocks: 256, RootDigest: digest},
			2048, "1 /dev/loop0 /dev/loop1 4096 4096 256 0 sha256 " + rootHex + " -"},
		{"verity salt legacy", Verity{LegacyFormat: true, DataDevice: "7:0", HashDevice: "7:0", DataBlockSize: 512, HashBlockSize: 1024,
			DataBlocks: 8, HashStartBlock: 5, Algorithm: "sha1", RootDigest: []byte{1, 2}, Salt: []byte{0xff, 0}},
			8, "0 7:0 7:0 512 1024 8 5 sha1 0102 ff00"},
		{"verity restart", Verity{DataDevice: "a", HashDevice: "b", DataBlocks: 1, RootDigest: digest, OnCorruption: CorruptionRestart},
			8, "1 a b 4096 4096 1 0 sha256 " + rootHex + " - 1 restart_on_corruption"},
		{"verity ignore", Verity{DataDevice: "a", HashDevice: "b", DataBlocks: 1, RootDigest: digest, OnCorruption: CorruptionIgnore},
			8, "1 a b 4096 4096 1 0 sha256 " + rootHex + " - 1 ignore_corruption"},
		{"verity all", Verity{DataDevice: "a", HashDevice: "b", DataBlocks: 1, RootDigest: digest, OnCorruption: CorruptionPanic,
			IgnoreZeroBlocks: true, CheckAtMostOnce: true, TryVerifyInTasklet: true, RootHashSigKeyDesc: "initos:root",
			FEC: &VerityFEC{Device: "/dev/vdc", Roots: 2, Blocks: 300, Start: 301}},
			8, "1 a b 4096 4096 1 0 sha256 " + rootHex + " - 14 panic_on_corruption ignore_zero_blocks check_at_most_once try_verify_in_tasklet " +
				"use_fec_from_device /dev/vdc fec_roots 2 fec_blocks 300 fec_start 301 root_hash_sig_key_desc initos:root"},
		{"crypt hex", Crypt{Length: 100, Key: []byte{0, 1, 0xfe}, Device: "/dev/vdb", Offset: 32768},
			100, "aes-xts-plain64 0001fe 0 /dev/vdb 32768"},
		{"crypt keyring", Crypt{Length: 100, Cipher: "aes-cbc-essiv:sha256", KeyringKey: &KeyringKey{Size: 64, Description: "cryptsetup:0a-d0"},
			IVOffset: 7, Device: "253:1", Offset: 0},
			100, "aes-cbc-essiv:sha256 :64:logon:cryptsetup:0a-d0 7 253:1 0"},
		{"crypt user key", Crypt{Length: 1, KeyringKey: &KeyringKey{Size: 32, Type: "user", Description: "k"}, Device: "d"},
			1, "aes-xts-plain64 :32:user:k 0 d 0"},
		{"crypt flags", Crypt{Length: 8, Key: []byte{1}, Device: "d", AllowDiscards: true, SameCPUCrypt: true, SubmitFromCryptCPUs: true,
			NoReadWorkqueue: true, NoWriteWorkqueue: true, IVLargeSectors: true, SectorSize: 4096},
			8, "aes-xts-plain64 01 0 d 0 7 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue iv_large_sectors sector_size:4096"},
		{"crypt sector 512", Crypt{Length: 8, Key: []byte{1}, Device: "d", SectorSize: 512, NoReadWorkqueue: true},
			8, "aes-xts-plain64 01 0 d 0 1 no_read_workqueue"},
		{"spec", Spec{Start: 0, Length: 9, Kind: "zero"}, 9, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.target.Params()
			if err != nil {
				t.Fatalf("Params() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("Params() = %q, want %q", got, tt.want)
			}
			if s := tt.target.Sectors(); s != tt.sectors {
				t.Errorf("Sectors() = %d, want %d", s, tt.sectors)
			}
		})
	}
}

func TestParamsErrors(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"linear no device", Linear{Length: 1}, "linear device is empty"},
		{"linear space", Linear{Length: 1, Device: "a b"}, "white space"},
		{"crypt no key", Crypt{Length: 1, Device: "d"}, "neither Key nor KeyringKey"},
		{"crypt two keys", Crypt{Length: 1, Device: "d", Key: []byte{1}, KeyringKey: &KeyringKey{Size: 1, Description: "x"}}, "both Key and KeyringKey"},
		{"crypt key size", Crypt{Length: 1, Device: "d", KeyringKey: &KeyringKey{Description: "x"}}, "size 0 is not positive"},
		{"crypt key type", Crypt{Length: 1, Device: "d", KeyringKey: &KeyringKey{Size: 1, Type: "big_key", Description: "x"}}, `type "big_key"`},
		{"crypt key desc", Crypt{Length: 1, Device: "d", KeyringKey: &KeyringKey{Size: 1}}, "description is empty"},
		{"crypt sector size", Crypt{Length: 1, Device: "d", Key: []byte{1}, SectorSize: 1000}, "sector size 1000"},
		{"crypt no device", Crypt{Length: 1, Key: []byte{1}}, "crypt device is empty"},
		{"verity no hash dev", Verity{DataDevice: "a", DataBlocks: 1, RootDigest: digest}, "verity hash device is empty"},
		{"verity block size", Verity{DataDevice: "a", HashDevice: "b", DataBlockSize: 1000, DataBlocks: 1, RootDigest: digest}, "data block size 1000"},
		{"verity no blocks", Verity{DataDevice: "a", HashDevice: "b", RootDigest: digest}, "data blocks: 0"},
		{"verity no digest", Verity{DataDevice: "a", HashDevice: "b", DataBlocks: 1}, "root digest is empty"},
		{"verity mode", Verity{DataDevice: "a", HashDevice: "b", DataBlocks: 1, RootDigest: digest, OnCorruption: 9}, "corruption mode 9"},
		{"verity fec", Verity{DataDevice: "a", HashDevice: "b", DataBlocks: 1, RootDigest: digest, FEC: &VerityFEC{}}, "FEC device is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.target.Params()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Params() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseTable(t *testing.T) {
	text := "# a comment\n0 100 linear /dev/vda 0\n\n100 8 crypt aes-xts-plain64 00 0 /dev/vdb 0 1 allow_discards\n108 2 zero\n"
	got, err := ParseTable(text)
	if err != nil {
		t.Fatalf("ParseTable: %v", err)
	}
	want := []Spec{
		{0, 100, "linear", "/dev/vda 0"},
		{100, 8, "crypt", "aes-xts-plain64 00 0 /dev/vdb 0 1 allow_discards"},
		{108, 2, "zero", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseTable diff (-want +got):\n%s", diff)
	}
	if s := got[0].String(); s != "0 100 linear /dev/vda 0" {
		t.Errorf("Spec.String() = %q, want %q", s, "0 100 linear /dev/vda 0")
	}
	if s := got[2].String(); s != "108 2 zero" {
		t.Errorf("Spec.String() = %q, want %q", s, "108 2 zero")
	}
}

func TestParseTableErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "no target lines"},
		{"0 10", "want START LENGTH TYPE"},
		{"x 10 linear", `start sector "x"`},
		{"0 -1 linear", `length "-1"`},
		{"0 0 linear", "length is 0"},
		{"5 10 linear a 0", "starts at sector 5, want 0"},
		{"0 10 zero\n11 1 zero", "line 2: target starts at sector 11, want 10"},
		{"0 10 averyveryverylongtypename", "target type"},
	}
	for _, tt := range tests {
		_, err := ParseTable(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTable(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00", strings.Repeat("n", 128)} {
		if CheckName(bad) == nil {
			t.Errorf("CheckName(%q) = nil, want an error", bad)
		}
	}
	for _, good := range []string{"root", "luks-1234", strings.Repeat("n", 127)} {
		if err := CheckName(good); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", good, err)
		}
	}
}

func TestKmsgMessage(t *testing.T) {
	tests := []struct {
		rec   string
		level int
		want  string
		ok    bool
	}{
		{"3,1234,5678,-;device-mapper: table: 254:0: verity: Invalid root digest\n", 3, "device-mapper: table: 254:0: verity: Invalid root digest", true},
		{"3,1,2,-,caller=T1;device-mapper: ioctl: error adding target to table\n SUBSYSTEM=x\n", 3, "device-mapper: ioctl: error adding target to table", true},
		{"14,5,6,-;user message\n", 6, "user message", true},
		{"no separator\n", 0, "", false},
		{"x;y\n", 0, "", false},
		{"x,1,2,-;y\n", 0, "", false},
	}
	for _, tt := range tests {
		level, got, ok := kmsgMessage(tt.rec)
		if level != tt.level || got != tt.want || ok != tt.ok {
			t.Errorf("kmsgMessage(%q) = %d, %q, %v, want %d, %q, %v", tt.rec, level, got, ok, tt.level, tt.want, tt.ok)
		}
	}
}
