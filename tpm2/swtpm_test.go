package tpm2

import (
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"initos/tpm2/swtpmtest"
)

// swtpm is one software TPM started for one test (see swtpmtest).
type swtpm struct {
	Dir    string
	Device Device
}

func startSwtpm(t testing.TB) *swtpm    { return wrap(t, swtpmtest.Start(t)) }
func startSwtpmTCP(t testing.TB) *swtpm { return wrap(t, swtpmtest.StartTCP(t)) }

func wrap(t testing.TB, s *swtpmtest.Swtpm) *swtpm {
	t.Helper()
	d, err := ParseDevice(s.Device())
	if err != nil {
		t.Fatal(err)
	}
	return &swtpm{Dir: s.Dir, Device: d}
}

// Open connects to the swtpm and closes the connection on cleanup.
func (s *swtpm) Open(t testing.TB) transport.TPM {
	t.Helper()
	tpm, err := Open(s.Device)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tpm.Close() })
	return tpm
}

func freePortPair(t testing.TB) int { return swtpmtest.FreePortPair(t) }

// tpm2PolicySession starts (and leaks) a policy session.
func tpm2PolicySession(t transport.TPM) (tpm2.Session, func() error, error) {
	return tpm2.PolicySession(t, tpm2.TPMAlgSHA256, 16)
}
